package io.lightllm.tornado.runtime;

import java.util.List;
import java.util.Optional;

/** A family of devices (jvm, opencl, cuda) behind one native runtime. */
public interface Backend {
    /** The prefix of device ids: {@code jvm}, {@code opencl}, {@code cuda}. */
    String name();

    /** Why the backend cannot be used here (no driver, no library), or empty when it can. */
    Optional<String> unavailableReason();

    /** Descriptions of the devices, without opening them. Empty when unavailable. */
    List<DeviceInfo> devices();

    /** Opens the device with the given id (as listed in {@link #devices()}). */
    Device open(String id);
}
