package io.lightllm.tornado.runtime;

/** What {@code lightllm devices} prints for one device. */
public record DeviceInfo(String id, String name, long memoryBytes, int computeUnits, String details) {

    @Override
    public String toString() {
        return String.format("%-14s %-40s %8.1f GiB  %4d compute units  %s", id, name,
                memoryBytes / (1024.0 * 1024 * 1024), computeUnits, details);
    }
}
