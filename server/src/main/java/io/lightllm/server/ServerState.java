package io.lightllm.server;

/** What every handler shares: the model, the server's settings, its queue limit and its metrics. */
record ServerState(ServedModel model, ServerConfig config, RequestSlots slots, ServerMetrics metrics, long startedEpochSeconds) {
}
