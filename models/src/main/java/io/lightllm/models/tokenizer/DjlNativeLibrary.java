package io.lightllm.models.tokenizer;

/**
 * Settings DJL reads when it first loads its native tokenizers library, set before that happens.
 *
 * <p>DJL's LibUtils picks the library "flavour" from RUST_FLAVOR, read with
 * {@code ai.djl.util.Utils.getEnvOrSystemProperty}: the environment variable first, then the
 * system property. Without it DJL probes for CUDA and, on a GPU machine, tries to download a CUDA
 * build of the library; the CPU build it needs ships inside the tokenizers jar. So unless the user
 * set RUST_FLAVOR in the environment or as a property, we set the property to "cpu". Offline mode
 * (ai.djl.offline, again env DJL_OFFLINE first) is set too, so that no other code path of DJL
 * tries the network: our machines have none, and tokenizers never need it.
 */
final class DjlNativeLibrary {
    private static boolean prepared;

    private DjlNativeLibrary() {
    }

    /** Call before the first use of any DJL class. */
    static synchronized void prepare() {
        if (prepared) {
            return;
        }
        if (System.getenv("RUST_FLAVOR") == null && System.getProperty("RUST_FLAVOR") == null) {
            System.setProperty("RUST_FLAVOR", "cpu");
        }
        if (System.getenv("DJL_OFFLINE") == null && System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
        prepared = true;
    }
}
