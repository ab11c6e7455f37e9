//! What a handler receives: one request, with its peer and its server.

mod stream;

pub use stream::{StreamRequest, TcpRequest};
