package io.lightllm.tornado.opencl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceInfo;
import io.lightllm.tornado.runtime.Devices;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OpenCLDiscoveryTest {

    @BeforeEach
    void requireOpenCL() {
        TestDevices.opencl(); // skips outside CI, fails under CI=true, when there is no OpenCL device
    }

    @Test
    void listsEveryDeviceWithItsProperties() {
        List<DeviceInfo> devices = OpenCLBackend.INSTANCE.devices();
        assertFalse(devices.isEmpty());
        for (DeviceInfo d : devices) {
            assertTrue(d.id().matches("opencl:\\d+:\\d+"), d.id());
            assertFalse(d.name().isBlank(), d.id() + " has no name");
            assertTrue(d.memoryBytes() > 0, d.id() + " global memory");
            assertTrue(d.computeUnits() > 0, d.id() + " compute units");
            assertTrue(d.details().contains("OpenCL "), d.details());
        }
        assertEquals("opencl:0:0", devices.getFirst().id());
    }

    @Test
    void listsThePoclDeviceWhenPoclIsInstalled() {
        boolean poclInstalled = Files.exists(Path.of("/etc/OpenCL/vendors/pocl.icd"));
        if (poclInstalled) {
            assertTrue(OpenCLBackend.INSTANCE.devices().stream()
                            .anyMatch(d -> d.details().startsWith("Portable Computing Language") && d.details().contains("CPU")),
                    "PoCL is registered but not listed: " + OpenCLBackend.INSTANCE.devices());
        }
    }

    @Test
    void devicesListAndGetIncludeOpenCL() {
        List<String> listed = Devices.list().stream().map(DeviceInfo::id).toList();
        for (DeviceInfo d : OpenCLBackend.INSTANCE.devices()) {
            assertTrue(listed.contains(d.id()), d.id() + " missing from Devices.list() " + listed);
        }
        Device dev = Devices.get("opencl:0:0");
        OpenCLDevice cl = assertInstanceOf(OpenCLDevice.class, dev);
        assertEquals("opencl:0:0", cl.id());
        assertEquals(OpenCLBackend.INSTANCE.devices().getFirst().name(), cl.name());
        assertTrue(cl.memoryBytes() > 0 && cl.computeUnits() > 0);
        assertSame(dev, Devices.get("opencl:0:0"), "Devices.get shares one instance per id");
    }

    @Test
    void badIdsSayWhatIsWrong() {
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> OpenCLBackend.INSTANCE.open("opencl:99:0"));
        assertTrue(missing.getMessage().contains("no OpenCL device opencl:99:0") && missing.getMessage().contains("opencl:0:0"),
                missing.getMessage());
        for (String bad : new String[] {"opencl", "opencl:0", "opencl:a:0", "opencl:0:0:0", "cuda:0"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OpenCLBackend.INSTANCE.open(bad));
            assertTrue(e.getMessage().contains("bad OpenCL device id '" + bad + "'") && e.getMessage().contains("opencl:P:D"), e.getMessage());
        }
        IllegalArgumentException viaDevices = assertThrows(IllegalArgumentException.class, () -> Devices.get("opencl:7:7"));
        assertTrue(viaDevices.getMessage().contains("opencl:7:7") && viaDevices.getMessage().contains("opencl:0:0"), viaDevices.getMessage());
    }

    /** Prints what the OpenCL backend reports; run in a child JVM whose ICD loader sees no driver. */
    public static final class PrintUnavailableReason {
        public static void main(String[] args) {
            System.out.println("reason=" + OpenCLBackend.INSTANCE.unavailableReason().orElse("none"));
            System.out.println("devices=" + OpenCLBackend.INSTANCE.devices().size());
        }
    }

    @Test
    void noPlatformMakesTheBackendUnavailableWithTheReason(@TempDir Path emptyVendors) throws IOException, InterruptedException {
        // the ICD loader reads its driver list from OCL_ICD_VENDORS when set: an empty folder means no platform
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), PrintUnavailableReason.class.getName());
        pb.environment().put("OCL_ICD_VENDORS", emptyVendors.toString());
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "child JVM hung");
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("reason=no OpenCL platform found"), out);
        assertTrue(out.contains("devices=0"), out);
    }
}
