
/// What the poll and epoll client loops share: a member's connection ends, and deadlines
/// pass. The loop provides `closed(slot)` (its own bookkeeping for a slot whose connection is
/// gone) and `service(slot, now)`.
impl<H: Handler> Loop<H> {
    /// `on_close`, then the member's next step: done, or a failed attempt to retry.
    fn close(&mut self, slot: usize, now: Instant) {
        if let Some(conn) = self.slots[slot].take() {
            self.timers.remove(slot);
            self.closed(slot);
            let (reason, failed, heard, peer) = (conn.control.reason, conn.control.failed, conn.control.heard, conn.control.info.peer);
            conn.release(&mut Direct(&mut self.worker));
            self.pool.ended(slot, reason, failed, heard, &peer, now);
        }
    }

    /// Handles every passed connection deadline; each connection at most once per turn.
    fn expire_connections(&mut self, now: Instant) {
        for _ in 0..self.timers.heap.len() {
            let worker = &mut self.worker;
            let expire = |conn: &mut Conn<H>| conn.expire(&mut Direct(worker), now);
            let Some(slot) = self.timers.next_expired(now, &mut self.slots, Conn::deadline, expire) else { break };
            self.service(slot, now);
        }
    }
}
