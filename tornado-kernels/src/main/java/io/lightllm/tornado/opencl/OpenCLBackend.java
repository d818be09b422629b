package io.lightllm.tornado.opencl;

import io.lightllm.tornado.runtime.Backend;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceInfo;
import io.lightllm.tornado.runtime.JvmSignalHandlers;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * OpenCL devices through libOpenCL.so.1 (the ICD loader) over Java's FFM API. Every device of
 * every platform is listed as {@code opencl:P:D}: platform P, device D, in the driver's order.
 */
public final class OpenCLBackend implements Backend {
    public static final OpenCLBackend INSTANCE = new OpenCLBackend();

    private static final Pattern ID = Pattern.compile("opencl:\\d+:\\d+");

    /** What discovery found, once per process: drivers do not appear while the JVM runs. */
    private record Discovery(List<OpenCLDeviceEntry> devices, String unavailable) {
    }

    private volatile Discovery discovery;

    private OpenCLBackend() {
    }

    @Override
    public String name() {
        return "opencl";
    }

    @Override
    public Optional<String> unavailableReason() {
        return Optional.ofNullable(discovery().unavailable);
    }

    @Override
    public List<DeviceInfo> devices() {
        return discovery().devices.stream().map(OpenCLDeviceEntry::info).toList();
    }

    @Override
    public Device open(String id) {
        return open(id, ProgramBinaryCache.defaultDirectory());
    }

    /** Opens a new device instance whose program binaries are cached under {@code binaryCacheDir}. */
    OpenCLDevice open(String id, Path binaryCacheDir) {
        return new OpenCLDevice(entry(id), binaryCacheDir);
    }

    OpenCLDeviceEntry entry(String id) {
        if (id == null || !ID.matcher(id).matches()) {
            throw new IllegalArgumentException("bad OpenCL device id '" + id + "': expected opencl:P:D (platform and device numbers, e.g. opencl:0:0)");
        }
        Discovery d = discovery();
        if (d.unavailable != null) {
            throw new IllegalArgumentException("device " + id + ": OpenCL is unavailable: " + d.unavailable);
        }
        return d.devices.stream().filter(e -> e.id().equals(id)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no OpenCL device " + id + "; found "
                        + d.devices.stream().map(OpenCLDeviceEntry::id).toList()));
    }

    private Discovery discovery() {
        Discovery d = discovery;
        if (d == null) {
            synchronized (this) {
                d = discovery;
                if (d == null) {
                    d = discover();
                    discovery = d;
                }
            }
        }
        return d;
    }

    private static Discovery discover() {
        if (CL.UNAVAILABLE != null) {
            return new Discovery(List.of(), CL.UNAVAILABLE);
        }
        JvmSignalHandlers.snapshot(); // before the ICD loader loads any driver
        try {
            List<MemorySegment> platforms = CL.platforms();
            if (platforms.isEmpty()) {
                return new Discovery(List.of(), "no OpenCL platform found (libOpenCL loaded, but no driver is installed: see /etc/OpenCL/vendors)");
            }
            List<OpenCLDeviceEntry> found = new ArrayList<>();
            for (int p = 0; p < platforms.size(); p++) {
                List<MemorySegment> devices = CL.devices(platforms.get(p));
                for (int dev = 0; dev < devices.size(); dev++) {
                    found.add(describe("opencl:" + p + ":" + dev, platforms.get(p), devices.get(dev)));
                }
            }
            if (found.isEmpty()) {
                return new Discovery(List.of(), platforms.size() + " OpenCL platform(s) found, but none has a device");
            }
            return new Discovery(List.copyOf(found), null);
        } catch (OpenCLException e) {
            return new Discovery(List.of(), "OpenCL discovery failed: " + e.getMessage());
        } finally {
            JvmSignalHandlers.restore("OpenCL discovery"); // a driver may install handlers as it initialises
        }
    }

    private static OpenCLDeviceEntry describe(String id, MemorySegment platform, MemorySegment device) {
        String platformName = CL.platformString(platform, CL.CL_PLATFORM_NAME);
        String platformVersion = CL.platformString(platform, CL.CL_PLATFORM_VERSION);
        String deviceName = CL.deviceString(device, CL.CL_DEVICE_NAME);
        String driverVersion = CL.deviceString(device, CL.CL_DRIVER_VERSION);
        String details = platformName + ", " + openclVersion(CL.deviceString(device, CL.CL_DEVICE_VERSION)) + ", "
                + deviceType(CL.deviceLong(device, CL.CL_DEVICE_TYPE)) + ", driver " + driverVersion;
        DeviceInfo info = new DeviceInfo(id, deviceName, CL.deviceLong(device, CL.CL_DEVICE_GLOBAL_MEM_SIZE),
                CL.deviceInt(device, CL.CL_DEVICE_MAX_COMPUTE_UNITS), details);
        return new OpenCLDeviceEntry(id, platform, device, platformName, platformVersion, deviceName, driverVersion, info);
    }

    /** "OpenCL 3.0" from a CL_DEVICE_VERSION like "OpenCL 3.0 PoCL HSTR: ...". */
    private static String openclVersion(String deviceVersion) {
        String[] words = deviceVersion.split("\\s+");
        return words.length >= 2 ? words[0] + " " + words[1] : deviceVersion;
    }

    private static String deviceType(long bits) {
        List<String> names = new ArrayList<>();
        if ((bits & CL.CL_DEVICE_TYPE_CPU) != 0) {
            names.add("CPU");
        }
        if ((bits & CL.CL_DEVICE_TYPE_GPU) != 0) {
            names.add("GPU");
        }
        if ((bits & CL.CL_DEVICE_TYPE_ACCELERATOR) != 0) {
            names.add("accelerator");
        }
        if ((bits & CL.CL_DEVICE_TYPE_CUSTOM) != 0) {
            names.add("custom");
        }
        return names.isEmpty() ? "device type " + bits : String.join("+", names);
    }
}
