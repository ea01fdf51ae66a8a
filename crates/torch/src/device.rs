//! Devices: what `--device` asks for resolved against what this libtorch sees, and
//! [`fstream::config::Device`] turned into libtorch's.

use fstream::Error;
use fstream::config::Device;

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRequest {
    /// The first GPU if libtorch sees one, else the CPU (and a log line saying why).
    Auto,
    /// The CPU.
    Cpu,
    /// The first GPU, or an error.
    Cuda,
}

/// The device `request` resolves to here.
///
/// # Errors
/// [`Error::Config`] for `Cuda` when libtorch sees no GPU, saying why.
pub fn resolve(request: DeviceRequest) -> Result<Device, Error> {
    let cuda = tch::Cuda::is_available();
    match request {
        DeviceRequest::Cpu => Ok(Device::Cpu),
        DeviceRequest::Auto | DeviceRequest::Cuda if cuda => Ok(Device::Cuda(0)),
        DeviceRequest::Auto => {
            log::info!("--device auto: {}; training on the CPU", no_cuda_reason());
            Ok(Device::Cpu)
        }
        DeviceRequest::Cuda => Err(Error::Config(format!(
            "--device cuda: {} (see README, \"Using your own PyTorch\")",
            no_cuda_reason()
        ))),
    }
}

/// libtorch's device for `device`.
///
/// # Errors
/// [`Error::Config`] when `device` is a GPU this libtorch does not see (a run recorded on
/// another machine: `--device` moves it).
pub fn tch_device(device: Device) -> Result<tch::Device, Error> {
    match device {
        Device::Cpu => Ok(tch::Device::Cpu),
        Device::Cuda(index) if tch::Cuda::device_count() > index as i64 => {
            Ok(tch::Device::Cuda(index))
        }
        Device::Cuda(_) => Err(Error::Config(format!(
            "device {}: libtorch does not see it here; pass --device to train elsewhere",
            device.name()
        ))),
    }
}

/// Why libtorch offers no CUDA device: a CPU-only build, or a CUDA build without a GPU.
fn no_cuda_reason() -> &'static str {
    if tch::utils::has_cuda() {
        "this libtorch has CUDA, but sees no GPU"
    } else {
        "this libtorch is a CPU-only build (no libtorch_cuda)"
    }
}
