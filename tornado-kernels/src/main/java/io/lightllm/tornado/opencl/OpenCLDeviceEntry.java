package io.lightllm.tornado.opencl;

import io.lightllm.tornado.runtime.DeviceInfo;
import java.lang.foreign.MemorySegment;

/**
 * One device found by discovery: its cl handles and the identity strings that key the
 * program binary cache (a binary is only valid for the same platform, device and driver).
 */
record OpenCLDeviceEntry(String id, MemorySegment platform, MemorySegment device, String platformName, String platformVersion,
        String deviceName, String driverVersion, DeviceInfo info) {
}
