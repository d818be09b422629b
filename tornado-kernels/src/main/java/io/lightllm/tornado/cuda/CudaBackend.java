package io.lightllm.tornado.cuda;

import io.lightllm.tornado.runtime.Backend;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceInfo;
import io.lightllm.tornado.runtime.JvmSignalHandlers;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * NVIDIA GPUs through the CUDA driver API and NVRTC, both loaded with FFM when first asked
 * (libcuda.so.1 comes with the driver; libnvrtc.so.13 with the CUDA toolkit or its
 * redistributable). Probing never throws: a machine without them just reports why.
 */
public final class CudaBackend implements Backend {
    public static final CudaBackend INSTANCE = new CudaBackend();

    private record Probe(String unavailableReason, List<DeviceInfo> devices) {
    }

    private volatile Probe probe;

    private CudaBackend() {
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public Optional<String> unavailableReason() {
        return Optional.ofNullable(probe().unavailableReason());
    }

    @Override
    public List<DeviceInfo> devices() {
        return probe().devices();
    }

    @Override
    public Device open(String id) {
        if (!id.matches("cuda:\\d+")) {
            throw new IllegalArgumentException("not a CUDA device id: '" + id + "' (use cuda:N)");
        }
        int ordinal = Integer.parseInt(id.substring(5));
        if (ordinal >= devices().size()) {
            throw new IllegalArgumentException("no device " + id + "; cuda has " + devices().stream().map(DeviceInfo::id).toList());
        }
        return new CudaDevice(ordinal);
    }

    /** Throws with the reason when the backend cannot be used. */
    static void requireAvailable() {
        INSTANCE.unavailableReason().ifPresent(r -> {
            throw new IllegalStateException("CUDA is unavailable: " + r);
        });
    }

    private Probe probe() {
        Probe p = probe;
        if (p == null) {
            synchronized (this) {
                p = probe;
                if (p == null) {
                    p = probe = runProbe();
                }
            }
        }
        return p;
    }

    private static Probe runProbe() {
        try {
            JvmSignalHandlers.snapshot(); // before the driver library loads
            String driverFailure = CudaDriver.loadFailure();
            if (driverFailure != null) {
                return new Probe(driverFailure, List.of());
            }
            int rc = CudaDriver.cuInit(0);
            JvmSignalHandlers.restore("cuInit");
            if (rc != CudaDriver.CUDA_SUCCESS) {
                return new Probe("cuInit failed: " + CudaDriver.errorText(rc) + " (driver " + CudaDriver.LIBRARY.loadedFrom() + ")", List.of());
            }
            int count = CudaDriver.queryInt("cuDeviceGetCount", CudaDriver::cuDeviceGetCount);
            if (count == 0) {
                return new Probe("the NVIDIA driver reports no CUDA devices", List.of());
            }
            String nvrtcFailure = Nvrtc.loadFailure();
            if (nvrtcFailure != null) {
                return new Probe("NVRTC (the CUDA runtime compiler, needed to build kernels) is unavailable: " + nvrtcFailure, List.of());
            }
            String versions = "driver CUDA " + driverVersion() + ", NVRTC " + Nvrtc.version();
            List<DeviceInfo> infos = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                infos.add(describe(i, versions));
            }
            return new Probe(null, List.copyOf(infos));
        } catch (Throwable t) {
            return new Probe("probing CUDA failed: " + t, List.of());
        }
    }

    private static DeviceInfo describe(int ordinal, String versions) {
        int dev = CudaDriver.queryInt("cuDeviceGet(" + ordinal + ")", out -> CudaDriver.cuDeviceGet(out, ordinal));
        long memory = CudaDriver.queryLong("cuDeviceTotalMem", out -> CudaDriver.cuDeviceTotalMem(out, dev));
        int sms = CudaDriver.queryInt("cuDeviceGetAttribute", out -> CudaDriver.cuDeviceGetAttribute(out,
                CudaDriver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
        int major = CudaDriver.queryInt("cuDeviceGetAttribute", out -> CudaDriver.cuDeviceGetAttribute(out,
                CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
        int minor = CudaDriver.queryInt("cuDeviceGetAttribute", out -> CudaDriver.cuDeviceGetAttribute(out,
                CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
        return new DeviceInfo("cuda:" + ordinal, deviceName(dev), memory, sms, "compute capability " + major + "." + minor + ", " + versions);
    }

    static String deviceName(int cuDevice) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocate(256);
            CudaDriver.check(CudaDriver.cuDeviceGetName(name, 256, cuDevice), "cuDeviceGetName");
            return name.getString(0);
        }
    }

    /** e.g. {@code 13.0} from cuDriverGetVersion's 13000. */
    static String driverVersion() {
        int v = CudaDriver.queryInt("cuDriverGetVersion", CudaDriver::cuDriverGetVersion);
        return v / 1000 + "." + (v % 1000) / 10;
    }

    @Override
    public String toString() {
        return "cuda backend (" + unavailableReason().orElse(devices().size() + " devices") + ")";
    }
}
