{%- if !v.uses_io_uring || !v.tcp %}

/// What `Conn::service` leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Nothing more to do until the socket is ready or a deadline passes.
    Wait,
    /// Budget spent with work left: service again soon.
    More,
    /// Finished or failed: close it.
    Done,
}
{%- endif %}

/// Receive calls per {% if v.tcp %}connection{% else %}socket{% endif %} per wakeup, so one busy peer cannot starve the others.
const CONN_BUDGET: usize = 16;

/// How a connection reaches its worker's state: directly in an event loop, through the
/// worker's lock in the blocking model, so callbacks of one worker never run at once.
trait WorkerAccess<W> {
    fn with<R>(&mut self, f: impl FnOnce(&mut W) -> R) -> R;
}

/// An event loop's own worker state.
struct Direct<'a, W>(&'a mut W);

impl<W> WorkerAccess<W> for Direct<'_, W> {
    fn with<R>(&mut self, f: impl FnOnce(&mut W) -> R) -> R {
        f(self.0)
    }
}

/// Counts handler panics, which close only their own connection.
static HANDLER_PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Hands out connection ids.
static NEXT_CONN_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
