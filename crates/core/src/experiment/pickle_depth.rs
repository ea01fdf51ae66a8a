//! How deeply a pickle's containers nest, measured by a pass over its opcodes before it is
//! unpickled: serde-pickle converts and drops the values it builds recursively, so a hostile
//! file of a few hundred KB (`]]]]…aaaa…`) overflows the stack. The pass runs the pickle
//! machine on depths instead of values (a scalar is 0, a container one more than its deepest
//! item) and stops at the first opcode it does not know, which unpickling then reports.

/// The deepest nesting accepted: the reference's statistics are a dict of lists of lists.
pub const MAX_DEPTH: usize = 32;

/// Checks that the containers of `bytes` nest at most [`MAX_DEPTH`] deep.
///
/// # Errors
/// The position and depth of the first container past the limit.
pub fn check_depth(bytes: &[u8]) -> Result<(), String> {
    let mut machine = Machine::default();
    let mut at = 0;
    while at < bytes.len() {
        let op = bytes[at];
        at += 1;
        let Some(argument) = argument_len(op, &bytes[at..]) else { return Ok(()) };
        at += argument;
        if op == b'.' {
            return Ok(());
        }
        let depth = machine.step(op);
        if depth > MAX_DEPTH {
            return Err(format!(
                "containers nested {depth} deep at byte {at}, more than the {MAX_DEPTH} of any statistics file"
            ));
        }
    }
    Ok(())
}

/// The pickle machine's stack, holding each value's depth.
#[derive(Debug, Default)]
struct Machine {
    stack: Vec<usize>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<usize, usize>,
    next_memo: usize,
}

impl Machine {
    fn pop(&mut self) -> usize {
        self.stack.pop().unwrap_or(0)
    }

    /// Pops back to the last mark; the deepest popped item.
    fn pop_mark(&mut self) -> usize {
        let start = self.marks.pop().unwrap_or(0).min(self.stack.len());
        self.stack.drain(start..).max().unwrap_or(0)
    }

    /// Puts `item` (a depth) into the container on top of the stack.
    fn add_to_top(&mut self, item: usize) -> usize {
        match self.stack.last_mut() {
            Some(top) => {
                *top = (*top).max(item + 1);
                *top
            }
            None => item + 1,
        }
    }

    /// Runs one opcode; returns the deepest value it made.
    fn step(&mut self, op: u8) -> usize {
        match op {
            // A new empty container.
            b']' | b'}' | b')' | b'\x8f' => self.push(1),
            b'(' => {
                self.marks.push(self.stack.len());
                0
            }
            // Items into the container on top.
            b'a' => {
                let item = self.pop();
                self.add_to_top(item)
            }
            b's' => {
                let value = self.pop();
                let key = self.pop();
                self.add_to_top(key.max(value))
            }
            b'e' | b'u' | b'\x90' => {
                let items = self.pop_mark();
                self.add_to_top(items)
            }
            // A container of the items since the mark, or of the top ones.
            b'l' | b't' | b'd' | b'\x91' => {
                let items = self.pop_mark();
                self.push(items + 1)
            }
            b'\x85' | b'\x86' | b'\x87' => {
                let items = (0..(op - b'\x84')).map(|_| self.pop()).max().unwrap_or(0);
                self.push(items + 1)
            }
            b'0' => {
                self.pop();
                0
            }
            b'1' => {
                self.pop_mark();
                0
            }
            b'2' => {
                let top = self.stack.last().copied().unwrap_or(0);
                self.push(top)
            }
            // Objects: their arguments are nested in them.
            b'R' | b'b' | b'\x81' => {
                let (argument, callable) = (self.pop(), self.pop());
                self.push(argument.max(callable) + 1)
            }
            b'\x92' => {
                let items = (0..3).map(|_| self.pop()).max().unwrap_or(0);
                self.push(items + 1)
            }
            b'\x93' => {
                self.pop();
                self.pop();
                self.push(0)
            }
            b'o' | b'i' => {
                let items = self.pop_mark();
                self.push(items + 1)
            }
            // The memo: a stored value keeps its depth.
            b'\x94' => {
                let top = self.stack.last().copied().unwrap_or(0);
                self.memo.insert(self.next_memo, top);
                self.next_memo += 1;
                0
            }
            b'p' | b'q' | b'r' => {
                let top = self.stack.last().copied().unwrap_or(0);
                self.memo.insert(self.next_memo, top);
                0
            }
            b'g' | b'h' | b'j' => self.push(0),
            b'\x80' | b'\x95' | b'Q' | b'P' => 0,
            // Every other opcode pushes one scalar.
            _ => self.push(0),
        }
    }

    fn push(&mut self, depth: usize) -> usize {
        self.stack.push(depth);
        depth
    }
}

/// The length of `op`'s argument at the start of `rest`, or `None` for an opcode this pass
/// does not know or an argument cut short.
fn argument_len(op: u8, rest: &[u8]) -> Option<usize> {
    let fixed = |n: usize| (rest.len() >= n).then_some(n);
    let counted = |width: usize| -> Option<usize> {
        let len = rest.get(..width)?.iter().rev().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        let total = width.checked_add(len)?;
        (rest.len() >= total).then_some(total)
    };
    let lines = |n: usize| {
        let mut end = 0;
        for _ in 0..n {
            end += rest[end..].iter().position(|&b| b == b'\n')? + 1;
        }
        Some(end)
    };
    match op {
        b'(' | b'.' | b'0' | b'1' | b'2' | b'N' | b'\x88' | b'\x89' | b']' | b'a' | b'e' | b'l'
        | b')' | b't' | b'\x85' | b'\x86' | b'\x87' | b'}' | b'd' | b's' | b'u' | b'\x8f'
        | b'\x90' | b'\x91' | b'b' | b'R' | b'\x81' | b'\x92' | b'\x93' | b'\x94' | b'Q' | b'o'
        | b'\x97' | b'\x98' => Some(0),
        b'\x80' | b'K' | b'h' | b'q' | b'\x82' => fixed(1),
        b'M' | b'\x83' => fixed(2),
        b'J' | b'j' | b'r' | b'\x84' => fixed(4),
        b'G' | b'\x95' => fixed(8),
        b'U' | b'C' | b'\x8c' | b'\x8a' => counted(1),
        b'T' | b'X' | b'B' | b'\x8b' => counted(4),
        b'\x8d' | b'\x8e' | b'\x96' => counted(8),
        b'I' | b'L' | b'S' | b'V' | b'F' | b'g' | b'p' | b'P' => lines(1),
        b'c' | b'i' => lines(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protocol-2 pickle of `depth` nested empty lists: `[[[…]]]`.
    fn nested_lists(depth: usize) -> Vec<u8> {
        let mut bytes = b"\x80\x02".to_vec();
        bytes.extend(std::iter::repeat_n(b']', depth));
        bytes.extend(std::iter::repeat_n(b'a', depth - 1));
        bytes.push(b'.');
        bytes
    }

    #[test]
    fn deep_nesting_is_refused_and_the_references_shape_is_not() {
        assert!(check_depth(&nested_lists(MAX_DEPTH)).is_ok());
        let err = check_depth(&nested_lists(100_000)).unwrap_err();
        assert!(err.starts_with("containers nested 33 deep"), "{err}");
        // {7: [[0.5], [1.0], [2.0]]} as pickle protocol 2 writes it (MARK, APPENDS, SETITEM).
        let stats = b"\x80\x02}q\x00K\x07]q\x01(]q\x02G?\xe0\x00\x00\x00\x00\x00\x00a]q\x03G?\xf0\x00\x00\x00\x00\x00\x00a]q\x04G@\x00\x00\x00\x00\x00\x00\x00aes.";
        assert!(check_depth(stats).is_ok());
        let mut machine = Machine::default();
        let mut at = 0;
        let mut deepest = 0;
        while at < stats.len() {
            let op = stats[at];
            at += 1 + argument_len(op, &stats[at..]).unwrap();
            if op != b'.' {
                deepest = deepest.max(machine.step(op));
            }
        }
        assert_eq!(deepest, 3, "dict of list of lists");
    }

    #[test]
    fn nesting_through_marks_is_counted() {
        // ((((…)))) built with MARK and TUPLE.
        let mut bytes = b"\x80\x02".to_vec();
        bytes.extend(std::iter::repeat_n(b'(', 1000));
        bytes.extend(std::iter::repeat_n(b't', 1000));
        bytes.push(b'.');
        assert!(check_depth(&bytes).is_err());
    }
}
