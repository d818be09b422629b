package io.lightllm.tornado.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.tornado.cuda.LaunchShape.Kind;
import io.lightllm.tornado.runtime.Grid;
import org.junit.jupiter.api.Test;

class LaunchShapeTest {
    /** An H100's limits (cuDeviceGetAttribute MAX_GRID_DIM_X/Y/Z). */
    private static final long[] H100_GRID = {Integer.MAX_VALUE, 65535, 65535};

    private static LaunchShape shape(Grid grid, Kind kind) {
        return LaunchShape.of(grid, kind, 1024, H100_GRID, "k");
    }

    @Test
    void serialKernelsRunOneThread() {
        assertEquals(new LaunchShape(1, 1, 1, 1, 1, 1), shape(Grid.of(1000), Kind.SERIAL));
    }

    @Test
    void parallelKernelsGetDefaultBlocksAndRoundTheGridUp() {
        assertEquals(new LaunchShape(4, 1, 1, 256, 1, 1), shape(Grid.of(1000), Kind.PARALLEL));
        assertEquals(new LaunchShape(1, 1, 1, 256, 1, 1), shape(Grid.of(1), Kind.PARALLEL));
        // reversed: the innermost loop (the grid's last dimension) on x, a warp of 32 along it
        assertEquals(new LaunchShape(17, 38, 1, 32, 8, 1), shape(Grid.of(300, 517), Kind.PARALLEL));
        assertEquals(new LaunchShape(1, 5, 5, 32, 4, 2), shape(Grid.of(9, 17, 9), Kind.PARALLEL));
    }

    @Test
    void parallelGridsAreLaunchedInnermostLoopFirstAndExplicitOnesAsGiven() {
        assertEquals(new LaunchShape(2, 50, 1, 64, 2, 1), shape(Grid.of(100, 128).local(2, 64), Kind.PARALLEL));
        assertEquals(new LaunchShape(50, 2, 1, 2, 64, 1), shape(Grid.of(100, 128).local(2, 64), Kind.EXPLICIT));
    }

    @Test
    void parallelKernelsUseGivenLocalSizes() {
        assertEquals(new LaunchShape(8, 1, 1, 128, 1, 1), shape(Grid.groups(8, 128), Kind.PARALLEL));
    }

    @Test
    void defaultBlocksShrinkToTheKernelsThreadLimit() {
        LaunchShape s = LaunchShape.of(Grid.of(1000), Kind.PARALLEL, 128, H100_GRID, "k");
        assertEquals(new LaunchShape(8, 1, 1, 128, 1, 1), s);
        LaunchShape s2 = LaunchShape.of(Grid.of(100, 100), Kind.PARALLEL, 64, H100_GRID, "k");
        assertEquals(64, s2.blockX() * s2.blockY());
    }

    @Test
    void gridStrideGridsAreCappedSoIndicesFitAnInt() {
        LaunchShape s = shape(Grid.of(1L << 40), Kind.PARALLEL);
        assertTrue((long) s.gridX() * s.blockX() <= Integer.MAX_VALUE, s.toString());
        LaunchShape tall = shape(Grid.of(10_000_000, 16), Kind.PARALLEL); // the outer loop runs on y
        assertEquals(65535, tall.gridY());
    }

    @Test
    void explicitKernelsGetExactlyTheirWorkGroups() {
        assertEquals(new LaunchShape(37, 1, 1, 256, 1, 1), shape(Grid.groups(37, 256), Kind.EXPLICIT));
        assertEquals(new LaunchShape(4, 6, 1, 16, 8, 1), shape(Grid.of(64, 48).local(16, 8), Kind.EXPLICIT));
    }

    @Test
    void badExplicitLaunchesAreRefusedWithAReason() {
        var noLocal = assertThrows(IllegalArgumentException.class, () -> shape(Grid.of(1024), Kind.EXPLICIT));
        assertTrue(noLocal.getMessage().contains("explicit kernels need local"), noLocal.getMessage());
        var tooBig = assertThrows(IllegalArgumentException.class, () -> LaunchShape.of(Grid.groups(4, 512), Kind.EXPLICIT, 256, H100_GRID, "k"));
        assertTrue(tooBig.getMessage().contains("limit of 256 threads per block"), tooBig.getMessage());
        var tooTall = assertThrows(IllegalArgumentException.class, () -> shape(Grid.of(1, 70_000).local(1, 1), Kind.EXPLICIT));
        assertTrue(tooTall.getMessage().contains("70000 work-groups in dimension 1"), tooTall.getMessage());
        var zTooDeep = assertThrows(IllegalArgumentException.class, () -> shape(Grid.of(1, 1, 128).local(1, 1, 128), Kind.EXPLICIT));
        assertTrue(zTooDeep.getMessage().contains("exceeds CUDA's limit of 64"), zTooDeep.getMessage());
    }
}
