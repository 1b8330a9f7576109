//! Stage 4, **render**: one module per output language, and the matrix of what each can emit.

pub mod c;
pub mod lang;

pub use lang::{support, Support};
