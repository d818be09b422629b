package io.lightllm.tornado.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class ThreadTeamTest {
    @Test
    void everyIndexRunsOnceInEveryLaunch() {
        try (ThreadTeam team = new ThreadTeam(4)) {
            for (int launch = 0; launch < 2000; launch++) {
                int n = 1 + launch % 37;
                AtomicIntegerArray runs = new AtomicIntegerArray(n);
                team.run(n, runs::incrementAndGet);
                for (int i = 0; i < n; i++) {
                    assertEquals(1, runs.get(i), "launch " + launch + " index " + i);
                }
            }
        }
    }

    @Test
    void aFailureReachesTheCallerAndTheTeamCarriesOn() {
        try (ThreadTeam team = new ThreadTeam(3)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> team.run(64, i -> {
                if (i == 17) {
                    throw new IllegalStateException("index 17");
                }
            }));
            assertEquals("index 17", e.getMessage());
            AtomicIntegerArray runs = new AtomicIntegerArray(64);
            team.run(64, runs::incrementAndGet);
            for (int i = 0; i < 64; i++) {
                assertEquals(1, runs.get(i));
            }
        }
    }

    /**
     * A worker that is not scheduled (here: held before it takes indices, as when another process
     * has its core) must not hold up the launch: the caller runs its share.
     */
    @Test
    void aLaunchDoesNotWaitForAWorkerThatNeverCameIn() {
        CountDownLatch release = new CountDownLatch(1);
        try (ThreadTeam team = new ThreadTeam(2, () -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        })) {
            assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
                for (int launch = 0; launch < 50; launch++) {
                    AtomicIntegerArray runs = new AtomicIntegerArray(8);
                    team.run(8, runs::incrementAndGet);
                    for (int i = 0; i < 8; i++) {
                        assertEquals(1, runs.get(i));
                    }
                }
            });
            release.countDown();
            AtomicIntegerArray runs = new AtomicIntegerArray(100);
            team.run(100, runs::incrementAndGet);
            for (int i = 0; i < 100; i++) {
                assertEquals(1, runs.get(i));
            }
        }
    }
}
