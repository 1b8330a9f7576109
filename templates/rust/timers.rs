
/// Deadlines: a binary min-heap of (deadline, slot) that knows each slot's position, so
/// finding what is due costs O(log n), not a sweep over every connection. Filing is lazy:
/// activity that moves a deadline later does not touch the heap; a connection found early is
/// filed again under its real deadline.
#[derive(Default)]
struct Timers {
    heap: Vec<(Instant, usize)>,
    /// `position[slot]`: where the slot sits in `heap`, or `usize::MAX`.
    position: Vec<usize>,
}

impl Timers {
    fn place(&mut self, i: usize, entry: (Instant, usize)) {
        self.heap[i] = entry;
        self.position[entry.1] = i;
    }

    fn up(&mut self, mut i: usize) {
        let entry = self.heap[i];
        while i > 0 && self.heap[(i - 1) / 2].0 > entry.0 {
            let parent = self.heap[(i - 1) / 2];
            self.place(i, parent);
            i = (i - 1) / 2;
        }
        self.place(i, entry);
    }

    fn down(&mut self, mut i: usize) {
        let entry = self.heap[i];
        loop {
            let mut child = 2 * i + 1;
            if child >= self.heap.len() {
                break;
            }
            if child + 1 < self.heap.len() && self.heap[child + 1].0 < self.heap[child].0 {
                child += 1;
            }
            if self.heap[child].0 >= entry.0 {
                break;
            }
            let moved = self.heap[child];
            self.place(i, moved);
            i = child;
        }
        self.place(i, entry);
    }

    fn remove(&mut self, slot: usize) {
        let Some(&i) = self.position.get(slot).filter(|&&i| i != usize::MAX) else { return };
        self.position[slot] = usize::MAX;
        let last = self.heap.pop();
        if let Some(last) = last.filter(|_| i < self.heap.len()) {
            self.place(i, last);
            self.up(i);
            let at = self.position[last.1];
            self.down(at);
        }
    }

    /// Files the slot under `at` when that is earlier than where it is filed.
    fn schedule(&mut self, slot: usize, at: Option<Instant>) {
        if self.position.len() <= slot {
            self.position.resize(slot + 1, usize::MAX);
        }
        let Some(at) = at else { return };
        match self.position[slot] {
            usize::MAX => {
                self.heap.push((at, slot));
                let last = self.heap.len() - 1;
                self.position[slot] = last;
                self.up(last);
            }
            i if at < self.heap[i].0 => {
                self.heap[i].0 = at;
                self.up(i);
            }
            _ => {}
        }
    }

    /// Milliseconds until the earliest deadline, for the poll timeout; -1 when there is none.
    fn timeout(&self, now: Instant) -> i32 {
        self.heap.first().map_or(-1, |&(at, _)| {
            let ms = at.saturating_duration_since(now).as_micros().div_ceil(1000);
            ms.min(i32::MAX as u128) as i32
        })
    }

    /// The next slot whose deadline has passed, after `expire` ran on its connection.
    /// `deadline` gives a connection's real deadline: one found early is filed again under
    /// it, and a slot left empty is dropped.
    fn next_expired<C>(
        &mut self,
        now: Instant,
        slots: &mut [Option<C>],
        deadline: impl Fn(&C) -> Option<Instant>,
        expire: impl FnOnce(&mut C),
    ) -> Option<usize> {
        while let Some(&(at, slot)) = self.heap.first() {
            if at > now {
                return None;
            }
            self.remove(slot);
            let Some(conn) = slots.get_mut(slot).and_then(Option::as_mut) else { continue };
            match deadline(conn) {
                Some(real) if real <= now => {
                    expire(conn);
                    return Some(slot);
                }
                real => self.schedule(slot, real),
            }
        }
        None
    }
}
