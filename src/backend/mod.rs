//! Stage 4, **render**: one module per output language, and the matrix of what each can emit.

pub mod c;
pub mod matrix;
pub mod rust;
pub mod view;

pub use matrix::{client_support, emitted_clients, support, Support};
