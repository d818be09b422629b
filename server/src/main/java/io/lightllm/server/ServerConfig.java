package io.lightllm.server;

/**
 * How the HTTP server runs.
 *
 * @param host            the address to bind (127.0.0.1 unless the user asks for more)
 * @param port            the port; 0 picks a free one
 * @param apiKey          when non-null, every endpoint but the health checks needs {@code Authorization: Bearer apiKey}
 * @param maxBodyBytes    larger request bodies get 413
 * @param maxRequests     generation requests in progress at once (running or queued); more get 503
 * @param media           where a vision model's images may come from besides {@code data:} URIs
 */
public record ServerConfig(String host, int port, String apiKey, int maxBodyBytes, int maxRequests, MediaPolicy media) {
    /**
     * vLLM's media flags: {@code allowedLocalMediaPath} (null: none) is the folder whose files {@code file://} image
     * URLs may name ({@code --allowed-local-media-path}); {@code allowRemote} lets the server fetch http(s) images
     * ({@code --allow-remote-images}). By default only {@code data:} URIs are read.
     */
    public record MediaPolicy(java.nio.file.Path allowedLocalMediaPath, boolean allowRemote) {
        public static final MediaPolicy DATA_ONLY = new MediaPolicy(null, false);
    }

    public static final int DEFAULT_MAX_BODY_BYTES = 4 << 20;
    public static final int DEFAULT_MAX_REQUESTS = 1024;

    public ServerConfig {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port must be in [0, 65535], got " + port);
        }
        if (apiKey != null && apiKey.isBlank()) {
            throw new IllegalArgumentException("the API key must not be blank");
        }
        if (maxBodyBytes < 1024) {
            throw new IllegalArgumentException("the body limit must be at least 1024 bytes, got " + maxBodyBytes);
        }
        if (maxRequests < 1) {
            throw new IllegalArgumentException("the request limit must be >= 1, got " + maxRequests);
        }
        if (media == null) {
            media = MediaPolicy.DATA_ONLY;
        }
    }

    /** Loopback on {@code port}, no key, default limits. */
    public static ServerConfig local(int port) {
        return new ServerConfig("127.0.0.1", port, null, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_REQUESTS, MediaPolicy.DATA_ONLY);
    }

    public ServerConfig withApiKey(String key) {
        return new ServerConfig(host, port, key, maxBodyBytes, maxRequests, media);
    }

    public ServerConfig withMaxRequests(int n) {
        return new ServerConfig(host, port, apiKey, maxBodyBytes, n, media);
    }

    public ServerConfig withMedia(MediaPolicy policy) {
        return new ServerConfig(host, port, apiKey, maxBodyBytes, maxRequests, policy);
    }
}
