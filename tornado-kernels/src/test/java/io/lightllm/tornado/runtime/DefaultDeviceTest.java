package io.lightllm.tornado.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.TestDevices;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@code -Dtornado.device=B:D} and {@code -Dlightllm.device=ID} pick the default device; wrong ids list the valid ones. */
class DefaultDeviceTest {
    @AfterEach
    void clearProperties() {
        System.clearProperty(Devices.TORNADO_DEVICE_PROPERTY);
        System.clearProperty(Devices.DEVICE_PROPERTY);
    }

    @Test
    void withoutPropertiesTheJvm() {
        assertEquals("jvm", Devices.defaultId());
        assertSame(Devices.get("jvm"), Devices.getDefault());
    }

    @Test
    void tornadoDeviceNamesTheDefaultByBackendAndDeviceNumber() {
        System.setProperty(Devices.TORNADO_DEVICE_PROPERTY, "2:0");
        assertEquals("jvm", Devices.defaultId());
        assertSame(Devices.get("jvm"), Devices.getDefault());
        List<String> accelerators = TestDevices.accelerators();
        if (!accelerators.isEmpty()) {
            String id = accelerators.getFirst();
            System.setProperty(Devices.TORNADO_DEVICE_PROPERTY, Devices.numbering().tornadoId(id).orElseThrow().toString());
            assertSame(Devices.get(id), Devices.getDefault());
        }
    }

    @Test
    void bothPropertiesMustAgree() {
        System.setProperty(Devices.TORNADO_DEVICE_PROPERTY, "2:0");
        System.setProperty(Devices.DEVICE_PROPERTY, "jvm");
        assertEquals("jvm", Devices.defaultId());
        System.setProperty(Devices.DEVICE_PROPERTY, "cuda:0");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, Devices::defaultId);
        assertEquals("-Dtornado.device=2:0 (jvm) and -Dlightllm.device=cuda:0 name different devices; set one of them", e.getMessage());
    }

    @Test
    void aWrongTornadoDeviceNamesThePropertyAndTheValidIds() {
        System.setProperty(Devices.TORNADO_DEVICE_PROPERTY, "9:9");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, Devices::getDefault);
        assertTrue(e.getMessage().startsWith("-Dtornado.device=9:9: no device 9:9: there is no backend 9 (0: opencl, 1: cuda, 2: jvm)"), e.getMessage());
        assertTrue(e.getMessage().contains("valid ids: ") && e.getMessage().contains("2:0 = jvm"), e.getMessage());
        System.setProperty(Devices.TORNADO_DEVICE_PROPERTY, "jvm");
        e = assertThrows(IllegalArgumentException.class, Devices::defaultId);
        assertTrue(e.getMessage().startsWith("-Dtornado.device=jvm: bad TornadoVM device id 'jvm': expected B:D"), e.getMessage());
    }

    @Test
    void aWrongDeviceIdListsTheValidOnes() {
        for (String id : List.of("opencl:9:9", "tpu:0", "jvm:1")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Devices.get(id), id);
            assertTrue(e.getMessage().contains("valid ids: ") && e.getMessage().contains("2:0 = jvm"), e.getMessage());
        }
    }
}
