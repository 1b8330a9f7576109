
/// What the poll and epoll client loops share: a member's connection ends, and deadlines
/// pass. The loop provides `closed(slot)` (its own bookkeeping for a slot whose connection is
/// gone) and `service(slot, now)`.
impl<H: Handler> Loop<H> {
    /// `on_close`, then the member's next step: done, or a failed attempt to retry.
    fn close(&mut self, slot: usize, now: Instant) {
        if let Some(conn) = self.slots[slot].take() {
            self.timers.remove(slot);
            self.closed(slot);
            let (reason, failed, peer) = (conn.control.reason, conn.control.failed, conn.control.info.peer);
            conn.release(&mut Direct(&mut self.worker));
            self.pool.ended(slot, reason, failed, &peer, now);
        }
    }

    /// Handles every passed connection deadline; each connection at most once per turn.
    fn expire_connections(&mut self, now: Instant) {
        for _ in 0..self.timers.heap.len() {
            let slots = &self.slots;
            let deadline = |slot: usize| slots.get(slot).and_then(Option::as_ref).and_then(Conn::deadline);
            let Some(slot) = self.timers.next_due(now, deadline) else { break };
            if let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                conn.expire(&mut Direct(&mut self.worker), now);
            }
            self.service(slot, now);
        }
    }
}
