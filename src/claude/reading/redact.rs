//! Replaces credentials in model output with `[REDACTED]` before a client
//! sees it: `sk-` keys, `Bearer` tokens, AWS access key ids and PEM private
//! key blocks. `redact` works on a whole text; `StreamRedactor` does the same
//! for text arriving in pieces, holding back the unfinished tail so that a
//! key split across two pieces is still caught.
//!
//! The patterns are stricter than a bare regex in two ways, so ordinary prose
//! survives: a match must start at a word boundary (`task-list` holds no
//! `sk-` key), and a `Bearer` token needs a digit or some length (`Bearer
//! authentication` is a phrase, `Bearer eyJhbGciOi1` a token).

pub const REDACTED: &str = "[REDACTED]";

/// Text withheld by the stream redactor is bounded; past this a held run is
/// released (redacted as far as seen) so a huge unbroken blob still streams.
/// Large enough for a PEM block of an 8192-bit RSA key (about 6.5 KB); small
/// enough that rescanning the held text on every delta stays cheap.
const MAX_HOLD: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Token,
    Pem,
}

/// A secret at `start..end`. `open` means more input could extend it.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    open: bool,
    kind: Kind,
}

/// Bytes a key or token can be made of; a run of them is a "word" here.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~+/=".contains(&b)
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
}

pub fn redact(text: &str) -> String {
    let spans = find_secrets(text);
    if spans.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        out.push_str(&text[at..span.start]);
        out.push_str(REDACTED);
        at = span.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Leftmost-first, non-overlapping. Every span starts and ends on an ASCII
/// byte or the text's end, so slicing at them never splits a character.
fn find_secrets(text: &str) -> Vec<Span> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let found = match b[i] {
            b'-' => pem_at(b, i),
            b'b' | b'B' => bearer_at(b, i),
            b's' => sk_key_at(b, i),
            b'A' => aws_key_at(b, i),
            _ => None,
        };
        match found {
            Some(span) => {
                i = span.end.max(i + 1);
                spans.push(span);
            }
            None => i += 1,
        }
    }
    spans
}

fn token_span(start: usize, end: usize, len: usize) -> Span {
    Span {
        start,
        end,
        open: end == len,
        kind: Kind::Token,
    }
}

/// `sk-` + at least 20 key characters, with a digit among them (real keys
/// such as `sk-ant-api03-…` and `sk-proj-…` have one) or 20 letters/digits
/// in a row.
fn sk_key_at(b: &[u8], i: usize) -> Option<Span> {
    if !b[i..].starts_with(b"sk-") || (i > 0 && is_key_byte(b[i - 1])) {
        return None;
    }
    let body = i + 3;
    let run_end = body + b[body..].iter().take_while(|&&c| is_key_byte(c)).count();
    let run = &b[body..run_end];
    let alnum_prefix = run.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    if run.len() >= 20 && run.iter().any(u8::is_ascii_digit) {
        Some(token_span(i, run_end, b.len()))
    } else if alnum_prefix >= 20 {
        Some(token_span(i, body + alnum_prefix, b.len()))
    } else {
        None
    }
}

/// `Bearer` (any case), blanks, then a token of 20+ characters or of 8+
/// with a digit; the whole phrase is replaced.
fn bearer_at(b: &[u8], i: usize) -> Option<Span> {
    const WORD: &[u8] = b"bearer";
    if b.len() < i + WORD.len()
        || !b[i..i + WORD.len()].eq_ignore_ascii_case(WORD)
        || (i > 0 && b[i - 1].is_ascii_alphanumeric())
    {
        return None;
    }
    let gap = b[i + WORD.len()..]
        .iter()
        .take_while(|&&c| c == b' ' || c == b'\t')
        .count();
    if gap == 0 {
        return None;
    }
    let start = i + WORD.len() + gap;
    let token = b[start..]
        .iter()
        .take_while(|&&c| c.is_ascii_alphanumeric() || b"-._~+/".contains(&c))
        .count();
    let pad = b[start + token..]
        .iter()
        .take_while(|&&c| c == b'=')
        .count();
    let tok = &b[start..start + token];
    if token >= 20 || (token >= 8 && tok.iter().any(u8::is_ascii_digit)) {
        Some(token_span(i, start + token + pad, b.len()))
    } else {
        None
    }
}

/// `AKIA`/`ASIA` + 16 upper-case letters or digits.
fn aws_key_at(b: &[u8], i: usize) -> Option<Span> {
    let prefixed = b[i..].starts_with(b"AKIA") || b[i..].starts_with(b"ASIA");
    if !prefixed || (i > 0 && b[i - 1].is_ascii_alphanumeric()) || b.len() < i + 20 {
        return None;
    }
    let body_ok = b[i + 4..i + 20]
        .iter()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    body_ok.then(|| token_span(i, i + 20, b.len()))
}

/// Length of a complete `-----BEGIN … KEY-----` header at the start of `b`.
fn pem_header_len(b: &[u8]) -> Option<usize> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    if !b.starts_with(BEGIN) {
        return None;
    }
    let label = b[BEGIN.len()..]
        .iter()
        .take(64)
        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b' ')
        .count();
    let after = BEGIN.len() + label;
    let label_ok = b[BEGIN.len()..after].ends_with(b"KEY");
    (label_ok && b[after..].starts_with(b"-----")).then_some(after + 5)
}

/// A PEM key: the header, then any lines of base64 and the `-----END …-----`
/// footer right after them. The body goes too: the header alone hides
/// nothing. A line of prose after the header ends the block.
fn pem_at(b: &[u8], i: usize) -> Option<Span> {
    let header = pem_header_len(&b[i..])?;
    let mut pos = i + header;
    let span = |end: usize, open: bool| Span {
        start: i,
        end,
        open,
        kind: Kind::Pem,
    };
    loop {
        let line_start = pos;
        let newline = match b.get(pos) {
            None => return Some(span(pos, true)),
            Some(b'\n') => 1,
            Some(b'\r') if b.get(pos + 1) == Some(&b'\n') => 2,
            Some(b'\r') if pos + 1 == b.len() => return Some(span(pos, true)),
            Some(_) => return Some(span(pos, false)),
        };
        pos += newline;
        let rest = &b[pos..];
        if rest.starts_with(b"-----END ") {
            let label = rest[9..]
                .iter()
                .take(64)
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b' ')
                .count();
            let dashes = rest[9 + label..]
                .iter()
                .take(5)
                .take_while(|&&c| c == b'-')
                .count();
            if dashes == 5 {
                return Some(span(pos + 9 + label + 5, false));
            }
            let unfinished = 9 + label + dashes == rest.len();
            return Some(span(
                if unfinished { b.len() } else { line_start },
                unfinished,
            ));
        }
        if rest.is_empty() || (b"-----END ".starts_with(rest)) {
            // The footer (or the next line) may still be on its way.
            return Some(span(b.len(), true));
        }
        let run = rest.iter().take_while(|&&c| is_base64_byte(c)).count();
        match rest.get(run) {
            _ if run == 0 => return Some(span(line_start, false)),
            None => return Some(span(b.len(), true)),
            Some(b'\n' | b'\r') => pos += run,
            Some(_) => return Some(span(line_start, false)),
        }
    }
}

/// True when `s` (starting at `-----BEGIN`) may still grow into a header.
fn could_become_pem_header(s: &[u8]) -> bool {
    if s.len() > 90 || pem_header_len(s).is_some() {
        return false;
    }
    let begin: &[u8] = b"-----BEGIN ";
    if s.len() <= begin.len() {
        return begin.starts_with(s);
    }
    let rest = &s[begin.len()..];
    let label = rest
        .iter()
        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b' ')
        .count();
    rest[label..].iter().all(|&c| c == b'-') && rest.len() - label < 5
}

/// Redacts text that arrives in pieces. `push` returns what is final now;
/// `flush` returns the rest at the end of the text.
#[derive(Debug, Default)]
pub struct StreamRedactor {
    pending: String,
    /// After a forced release of an unfinished secret, the rest of it is
    /// dropped as it arrives.
    swallowing: Option<Kind>,
}

impl StreamRedactor {
    pub fn new() -> StreamRedactor {
        StreamRedactor::default()
    }

    pub fn push(&mut self, delta: &str) -> String {
        let delta = self.swallow(delta);
        self.pending.push_str(delta);
        let cut = self.safe_cut();
        let out = redact(&self.pending[..cut]);
        self.pending.drain(..cut);
        out
    }

    pub fn flush(&mut self) -> String {
        self.swallowing = None;
        let out = redact(&self.pending);
        self.pending.clear();
        out
    }

    fn swallow<'a>(&mut self, delta: &'a str) -> &'a str {
        let Some(kind) = self.swallowing else {
            return delta;
        };
        let keep = |c: u8| match kind {
            Kind::Token => is_token_byte(c),
            Kind::Pem => is_base64_byte(c) || c == b'\n' || c == b'\r' || c == b'-',
        };
        // Only ASCII bytes are dropped, so the cut is a character boundary.
        let n = delta.bytes().take_while(|&c| keep(c)).count();
        if n < delta.len() {
            self.swallowing = None;
        }
        &delta[n..]
    }

    /// How much of `pending` no later input can change: everything before
    /// the trailing word, an unfinished `Bearer ` phrase, an unfinished PEM
    /// header, or a secret that touches the end.
    fn safe_cut(&mut self) -> usize {
        let text = self.pending.as_str();
        let b = text.as_bytes();
        let mut hold = b.len() - b.iter().rev().take_while(|&&c| is_token_byte(c)).count();

        let before = &b[..hold];
        let words_end = before.len()
            - before
                .iter()
                .rev()
                .take_while(|&&c| c == b' ' || c == b'\t')
                .count();
        if words_end < before.len()
            && words_end >= 6
            && before[words_end - 6..words_end].eq_ignore_ascii_case(b"bearer")
        {
            hold = words_end - 6;
        }
        if let Some(p) = text.rfind("-----BEGIN") {
            if could_become_pem_header(&b[p..]) {
                hold = hold.min(p);
            }
        }
        let spans = find_secrets(text);
        for span in spans.iter().rev() {
            if span.open || (span.start < hold && span.end > hold) {
                hold = hold.min(span.start);
            }
        }
        if b.len() - hold > MAX_HOLD {
            self.swallowing = spans.last().filter(|s| s.open).map(|s| s.kind);
            return b.len();
        }
        hold
    }
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
