/// A sendmsg's header and iovec, which stay put while the kernel may read them. Made for a
/// send of several chunks only (one chunk goes with send()) and dropped when it completes, so
/// an idle connection does not carry it.
struct SendIo {
    msg: libc::msghdr,
    iov: [libc::iovec; OUT_IOV],
}

impl Default for SendIo {
    fn default() -> SendIo {
        // SAFETY: all-zero msghdr and iovecs are valid (empty) values.
        unsafe { std::mem::zeroed() }
    }
}

/// A TCP connection's I/O on the ring, the same for a server's and a client's connections:
/// one multishot receive into the provided buffers and at most one send, so bytes never
/// overtake each other. The loop provides `ring`, `slots`, `timers`, `worker` and `closed`,
/// which releases a connection once the ring holds no request of it.
impl<H: Handler> Loop<H> {
    /// After the connection's handler ran: settle the contract's steps, then start the I/O
    /// they call for (a send, a receive, or cancelling the receive while input is not wanted).
    fn advance(&mut self, slot: usize, now: Instant) -> io::Result<()> {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        let mut access = Direct(&mut self.worker);
        for _ in 0..CONN_BUDGET {
            if conn.control.phase == Phase::Done {
                break;
            }
            let progress = conn.settle(&mut access, now);
            if conn.control.phase == Phase::Done || !(progress | conn.produce(&mut access)) {
                break;
            }
        }
        let fd = types::Fd(conn.stream.as_raw_fd());
        if conn.control.phase != Phase::Done {
            if conn.out.pending > 0 && !conn.send_inflight {
                let mut iov = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; OUT_IOV];
                let count = conn.out.gather(&mut iov);
                let entry = if count == 1 {
                    // The request's length is 32 bits: a larger chunk goes in pieces (a send of
                    // 1 GiB is partial anyway, and the rest follows).
                    let len = iov[0].iov_len.min(1 << 30) as u32;
                    Some(opcode::Send::new(fd, iov[0].iov_base as *const u8, len).flags(libc::MSG_NOSIGNAL).build())
                } else if conn.send_io.is_empty() && conn.send_io.try_reserve_exact(1).is_err() {
                    conn.end(CloseReason::Error(libc::ENOMEM));
                    None
                } else {
                    if conn.send_io.is_empty() {
                        conn.send_io.push(SendIo::default());
                    }
                    let io = &mut conn.send_io[0];
                    io.iov = iov;
                    // SAFETY: an all-zero msghdr is valid; it points at iov beside it, which
                    // stays put until the send completes.
                    io.msg = unsafe { std::mem::zeroed() };
                    io.msg.msg_iov = io.iov.as_mut_ptr();
                    io.msg.msg_iovlen = count;
                    Some(opcode::SendMsg::new(fd, &io.msg).flags(libc::MSG_NOSIGNAL as u32).build())
                };
                if let Some(entry) = entry {
                    self.ring.push(entry.user_data(tag(slot, OP_SEND)))?;
                    conn.send_inflight = true;
                }
            }
            if conn.wants_input() {
                if !conn.recv_armed {
                    self.ring.push(opcode::RecvMulti::new(fd, BUFFER_GROUP).build().user_data(tag(slot, OP_RECV)))?;
                    conn.recv_armed = true;
                }
            } else if conn.recv_armed && !conn.recv_cancelling {
                // Back-pressure: data already received still arrives and is kept.
                self.ring.push(opcode::AsyncCancel::new(tag(slot, OP_RECV)).build().user_data(tag(slot, OP_CANCEL)))?;
                conn.recv_cancelling = true;
                conn.cancels_inflight += 1;
            }
        }
        if conn.control.phase == Phase::Done {
            return self.finish(slot);
        }
        self.timers.schedule(slot, conn.deadline());
        Ok(())
    }

    /// The connection is done: cancel what it has in the ring, and close it when nothing of it
    /// is left there, since the kernel may use its buffers until then.
    fn finish(&mut self, slot: usize) -> io::Result<()> {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        self.timers.remove(slot);
        if conn.recv_armed || conn.send_inflight {
            if conn.cancels_inflight == 0 {
                let everything = types::CancelBuilder::fd(types::Fd(conn.stream.as_raw_fd())).all();
                self.ring.push(opcode::AsyncCancel2::new(everything).build().user_data(tag(slot, OP_CANCEL)))?;
                conn.cancels_inflight += 1;
            }
            return Ok(());
        }
        if conn.cancels_inflight > 0 {
            return Ok(());
        }
        self.closed(slot);
        Ok(())
    }

    /// Handles one completion of a connection.
    fn complete(&mut self, slot: usize, op: u64, result: i32, flags: u32, now: Instant) -> io::Result<()> {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        match op {
            OP_RECV => {
                if !cqueue::more(flags) {
                    conn.recv_armed = false;
                    conn.recv_cancelling = false;
                }
                op_log!("{PROGRAM}: op=recv fd={} bytes={result} result={}", conn.stream.as_raw_fd(), match result { 0 => "EOF".to_string(), r if r > 0 => "ok".to_string(), r => op_result::<()>(&Err(io::Error::from_raw_os_error(-r))) });
                if let Some(id) = cqueue::buffer_select(flags) {
                    if result > 0 && conn.control.phase != Phase::Done {
{%- if v.client %}
                        conn.control.heard = true;
{%- endif %}
                        conn.receive(&mut Direct(&mut self.worker), self.ring.buffer(id, result as usize), now);
                    }
                    self.ring.return_buffer(id);
                } else if result == 0 {
                    conn.read_eof();
                } else if result < 0 && !matches!(-result, libc::ENOBUFS | libc::ECANCELED | libc::EINTR | libc::EAGAIN) {
                    // ENOBUFS: every buffer was in use; nothing was lost, the receive is armed again.
                    conn.fail(&io::Error::from_raw_os_error(-result));
                }
            }
            OP_SEND => {
                conn.send_inflight = false;
                // A queue of several chunks makes it again.
                conn.send_io = Vec::new();
                op_log!("{PROGRAM}: op=send fd={} bytes={result} result={}", conn.stream.as_raw_fd(), if result >= 0 { "ok".to_string() } else { op_result::<()>(&Err(io::Error::from_raw_os_error(-result))) });
                if result >= 0 {
                    if conn.control.phase != Phase::Done {
                        conn.last_active = now;
                        conn.out.consume(result as usize);
                    }
                } else if !matches!(-result, libc::EINTR | libc::EAGAIN | libc::ECANCELED) {
                    conn.fail(&io::Error::from_raw_os_error(-result));
                }
            }
            _ => conn.cancels_inflight -= 1,
        }
        if conn.control.phase == Phase::Done {
            self.finish(slot)
        } else {
            self.advance(slot, now)
        }
    }

    /// Handles every passed deadline; each connection at most once per turn.
    fn expire(&mut self, now: Instant) -> io::Result<()> {
        for _ in 0..self.timers.heap.len() {
            let worker = &mut self.worker;
            let expire = |conn: &mut Conn<H>| conn.expire(&mut Direct(worker), now);
            let Some(slot) = self.timers.next_expired(now, &mut self.slots, Conn::deadline, expire) else { break };
            self.advance(slot, now)?;
        }
        Ok(())
    }
}
