package io.lightllm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;

/** How a failed body read is answered: Jetty reports a stalled upload as an IOException caused by its idle timeout. */
class BodyReadFailureTest {
    @Test
    void aStalledBodyIsA408WithoutAJavaClassName() {
        IOException stalled = new IOException(new TimeoutException("Idle timeout expired: 30000/30000 ms"));
        ApiException e = Prompts.bodyReadFailure(stalled);
        assertEquals(408, e.status());
        assertFalse(e.getMessage().contains("java."), e.getMessage());
    }

    @Test
    void anotherFailureIsA400WithoutAJavaClassName() {
        ApiException e = Prompts.bodyReadFailure(new IOException("java.io.EOFException: Early EOF"));
        assertEquals(400, e.status());
        assertFalse(e.getMessage().contains("java."), e.getMessage());
    }
}
