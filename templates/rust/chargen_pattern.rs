/// The RFC 864 pattern, one byte at a time (`line` and `column` say where it is).
impl Chargen {
    const LINE_CHARS: usize = 72;
    const CYCLE: usize = 95;

    fn next_byte(&mut self) -> u8 {
        let byte = if self.column < Self::LINE_CHARS {
            b' ' + ((self.line + self.column) % Self::CYCLE) as u8
        } else if self.column == Self::LINE_CHARS {
            b'\r'
        } else {
            b'\n'
        };
        self.column += 1;
        if self.column == Self::LINE_CHARS + 2 {
            self.column = 0;
            self.line = (self.line + 1) % Self::CYCLE;
        }
        byte
    }
}
