package io.lightllm.tornado.api;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * On a kernel's entry method: it is launched with at most {@code localSize} work-items a group, and at least
 * {@code minGroupsPerUnit} groups should fit one compute unit at once. CUDA C gets
 * {@code __launch_bounds__(localSize, minGroupsPerUnit)}, so the compiler caps the registers a work-item may take
 * (spilling what does not fit) to reach that occupancy; OpenCL and the JVM ignore it. For kernels whose registers,
 * not their local memory, limit how many groups run together.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
public @interface LaunchBounds {
    int localSize();

    int minGroupsPerUnit();
}
