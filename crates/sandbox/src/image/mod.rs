//! Container images: OCI image-layout archives and registry blobs, verified by digest and
//! unpacked safely into a per-digest root filesystem cache.
//!
//! - [`unpack`]: applies layers without ever writing outside the root (no `..`, absolute
//!   paths or writes through symlinks; no device nodes, fifos or setuid bits; whiteouts;
//!   size and entry caps).
//! - [`store`]: content-addressed blobs, image-layout import, unpacked roots by manifest
//!   digest.
//! - [`build`]: writes image-layout archives (the example image, test images).

pub mod build;
pub mod store;
pub mod unpack;

pub use store::{parse_digest, Image, ImageConfig, ImageLimits, ImageStore};
pub use unpack::UnpackLimits;
