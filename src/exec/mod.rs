//! Running things on devices: SSH (russh) and, later, the operation queue.

pub mod hostkey;

pub use hostkey::scan_host_key;
