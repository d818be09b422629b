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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

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
}
