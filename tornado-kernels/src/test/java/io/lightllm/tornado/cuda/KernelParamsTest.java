package io.lightllm.tornado.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** cuLaunchKernel's kernelParams: pointer i points at argument i's value, stored with its C size. */
class KernelParamsTest {

    @Test
    void scalarsAreStoredWithTheirCTypesAndPointedAt() {
        KernelParams p = new KernelParams(2); // smaller than the argument list: it grows
        MemorySegment array = p.pack(new Object[] {7, -3L, 2.5f, 0.125, true, false}).reinterpret(6 * ADDRESS.byteSize());
        for (int i = 0; i < 6; i++) {
            assertEquals(p.slot(i).address(), array.getAtIndex(ADDRESS, i).address(), "pointer " + i);
        }
        assertEquals(7, p.slot(0).get(JAVA_INT, 0));
        assertEquals(-3L, p.slot(1).get(JAVA_LONG, 0));
        assertEquals(2.5f, p.slot(2).get(JAVA_FLOAT, 0));
        assertEquals(0.125, p.slot(3).get(JAVA_DOUBLE, 0));
        assertEquals(1, p.slot(4).get(JAVA_INT, 0), "booleans are C ints");
        assertEquals(0, p.slot(5).get(JAVA_INT, 0));
        assertEquals(0, p.slot(0).address() % 8, "slots are 8-byte aligned for long long, double and pointers");
        p.close();
    }

    @Test
    void unsupportedArgumentsAreRefused() {
        KernelParams p = new KernelParams(4);
        var e = assertThrows(IllegalArgumentException.class, () -> p.pack(new Object[] {1, "text"}));
        assertTrue(e.getMessage().contains("argument 1") && e.getMessage().contains("String"), e.getMessage());
        p.close();
    }
}
