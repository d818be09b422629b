package io.lightllm.tornado.api;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks the induction variable of a loop whose iterations are independent:
 * {@code for (@Parallel int i = 0; i < n; i++)}.
 *
 * <p>It is a type annotation so that javac keeps it in the class file (with the variable's
 * bytecode range), which is how the kernel compiler finds the loop. Up to three nested
 * parallel loops map, outermost first, to grid dimensions 0, 1 and 2. The loop becomes a
 * grid-stride loop ({@code i = start + id * step; i += size * step}), so any grid size is
 * correct and the grid only decides how the work is spread.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.TYPE_USE)
public @interface Parallel {
}
