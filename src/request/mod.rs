//! What a handler receives: one request, with its peer and its server.

mod datagram;
mod layers;
mod read_buffer;
mod stream;

pub use datagram::{DatagramRequest, UdpRequest, UnixDatagramRequest};
pub(crate) use layers::Layers;
#[cfg(feature = "proxy-protocol")]
pub(crate) use layers::Proxied;
pub(crate) use read_buffer::ReadBuffer;
pub(crate) use stream::{Detached, Traffic};
pub use stream::{StreamRequest, TcpRequest, UnixStreamRequest};
