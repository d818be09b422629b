package io.lightllm.tornado.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.tornado.jvm.JvmBackend;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** TornadoVM-style B:D ids over fake backends, so the CUDA and multi-platform OpenCL mappings are tested without their drivers. */
class DeviceNumberingTest {
    /** A backend that lists {@code ids}, or is unavailable for {@code reason}. */
    private record FakeBackend(String name, String reason, List<String> ids) implements Backend {
        @Override
        public Optional<String> unavailableReason() {
            return Optional.ofNullable(reason);
        }

        @Override
        public List<DeviceInfo> devices() {
            return reason != null ? List.of() : ids.stream().map(id -> new DeviceInfo(id, "fake " + id, 1L << 30, 1, "")).toList();
        }

        @Override
        public Device open(String id) {
            throw new UnsupportedOperationException();
        }
    }

    /** Two OpenCL platforms (two devices, then one), as TornadoVM flattens them into one backend's device numbers. */
    private static final Backend OPENCL = new FakeBackend("opencl", null, List.of("opencl:0:0", "opencl:0:1", "opencl:1:0"));
    private static final Backend TWO_GPUS = new FakeBackend("cuda", null, List.of("cuda:0", "cuda:1"));
    private static final Backend NO_DRIVER = new FakeBackend("cuda", "libcuda.so.1 not found", List.of());

    @Test
    void numbersBackendsInOrderAndFlattensOpenCLPlatforms() {
        DeviceNumbering n = new DeviceNumbering(List.of(OPENCL, TWO_GPUS, JvmBackend.INSTANCE));
        assertEquals("opencl:0:0", n.deviceId("0:0"));
        assertEquals("opencl:0:1", n.deviceId("0:1"));
        assertEquals("opencl:1:0", n.deviceId("0:2"), "platform 1's first device follows platform 0's two");
        assertEquals("cuda:0", n.deviceId("1:0"));
        assertEquals("cuda:1", n.deviceId(new TornadoDeviceId(1, 1)));
        assertEquals("jvm", n.deviceId("2:0"));
        for (String id : List.of("opencl:0:0", "opencl:0:1", "opencl:1:0", "cuda:0", "cuda:1", "jvm")) {
            assertEquals(id, n.deviceId(n.tornadoId(id).orElseThrow()), "the two directions agree for " + id);
        }
        assertEquals(new TornadoDeviceId(0, 2), n.tornadoId("opencl:1:0").orElseThrow());
        assertEquals(Optional.empty(), n.tornadoId("cuda:7"));
        assertEquals("0:0 = opencl:0:0, 0:1 = opencl:0:1, 0:2 = opencl:1:0, 1:0 = cuda:0, 1:1 = cuda:1, 2:0 = jvm", n.validIds());
    }

    @Test
    void anUnavailableBackendKeepsItsNumber() {
        DeviceNumbering n = new DeviceNumbering(List.of(OPENCL, NO_DRIVER, JvmBackend.INSTANCE));
        assertEquals("jvm", n.deviceId("2:0"), "the JVM is 2:0 with or without a GPU driver");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> n.deviceId("1:0"));
        assertTrue(e.getMessage().contains("backend 1 is cuda, which is unavailable here: libcuda.so.1 not found"), e.getMessage());
        assertTrue(e.getMessage().endsWith("valid ids: 0:0 = opencl:0:0, 0:1 = opencl:0:1, 0:2 = opencl:1:0, 2:0 = jvm"), e.getMessage());
    }

    @Test
    void wrongIdsListTheValidOnes() {
        DeviceNumbering n = new DeviceNumbering(List.of(OPENCL, NO_DRIVER, JvmBackend.INSTANCE));
        String valid = "valid ids: 0:0 = opencl:0:0, 0:1 = opencl:0:1, 0:2 = opencl:1:0, 2:0 = jvm";
        Map<String, String> expected = Map.of(
                "9:9", "no device 9:9: there is no backend 9 (0: opencl, 1: cuda, 2: jvm); ",
                "0:3", "no device 0:3: backend 0 (opencl) has 3 device(s); ",
                "2:1", "no device 2:1: backend 2 (jvm) has 1 device(s); ",
                "opencl:0:0", "bad TornadoVM device id 'opencl:0:0': expected B:D (backend and device numbers, e.g. 0:0); ",
                "-1:0", "bad TornadoVM device id '-1:0'",
                "", "bad TornadoVM device id ''");
        expected.forEach((id, message) -> {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> n.deviceId(id), id);
            assertTrue(e.getMessage().startsWith(message) && e.getMessage().endsWith(valid), e.getMessage());
        });
        assertEquals(new TornadoDeviceId(1, 12), TornadoDeviceId.parse(" 1:12 "));
        assertEquals("1:12", new TornadoDeviceId(1, 12).toString());
    }

    @Test
    void theConfigFileOrdersEveryBackendOnce() {
        Map<String, Backend> built = new LinkedHashMap<>();
        built.put("jvm", JvmBackend.INSTANCE);
        built.put("opencl", OPENCL);
        built.put("cuda", TWO_GPUS);
        assertEquals(List.of(OPENCL, TWO_GPUS, JvmBackend.INSTANCE), Devices.ordered(built, List.of("opencl", "cuda", "jvm")));
        IllegalStateException unknown = assertThrows(IllegalStateException.class, () -> Devices.ordered(built, List.of("opencl", "ptx", "jvm")));
        assertTrue(unknown.getMessage().contains("names an unknown backend 'ptx'; the backends are [jvm, opencl, cuda]"), unknown.getMessage());
        IllegalStateException twice = assertThrows(IllegalStateException.class, () -> Devices.ordered(built, List.of("jvm", "jvm", "cuda")));
        assertTrue(twice.getMessage().contains("names 'jvm' twice"), twice.getMessage());
        IllegalStateException missing = assertThrows(IllegalStateException.class, () -> Devices.ordered(built, List.of("opencl", "jvm")));
        assertTrue(missing.getMessage().contains("must list every backend"), missing.getMessage());
    }

    /** The shipped order (docs/kernels.md documents it): OpenCL 0, CUDA 1 whether or not a driver is here, the JVM 2. */
    @Test
    void theShippedOrderIsOpenCLThenCudaThenTheJvm() {
        assertEquals(List.of("opencl", "cuda", "jvm"), TornadoConfig.deviceOrder());
        assertEquals(List.of("opencl", "cuda", "jvm"), Devices.backends().stream().map(Backend::name).toList());
        assertEquals("jvm", Devices.numbering().deviceId("2:0"));
        assertEquals(new TornadoDeviceId(2, 0), Devices.numbering().tornadoId("jvm").orElseThrow());
    }
}
