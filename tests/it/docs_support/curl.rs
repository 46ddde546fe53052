//! Reads a curl command line out of a docs block the way a POSIX shell and
//! curl would (quotes, backslash line continuations, `$VAR` expansion,
//! comments, the options the docs use) and turns it into the HTTP request
//! curl would send, so the test can send it itself. Options it does not
//! know are an error, so an example cannot quietly mean something else.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurlRequest {
    pub method: String,
    /// Path and query of the URL; the host is the test server's.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// The one request a `test:` block makes. Lines that only assign a variable
/// the test provides (`SESSION_ID=...`) are shown for the reader and skipped.
pub fn request_of(text: &str, vars: &HashMap<String, String>) -> Result<CurlRequest, String> {
    let mut curls = Vec::new();
    for words in commands(text, vars)? {
        match words.first().map(String::as_str) {
            Some("curl") => curls.push(words),
            Some(word) if is_assignment(word) && words.len() == 1 => {
                let name = word.split('=').next().unwrap_or("");
                if !vars.contains_key(name) {
                    return Err(format!("assigns {name}, which the test does not provide"));
                }
            }
            Some(other) => return Err(format!("runs `{other}`, not curl")),
            None => {}
        }
    }
    match curls.as_slice() {
        [one] => parse_curl(one),
        _ => Err(format!("expected one curl command, found {}", curls.len())),
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
    })
}

/// Splits shell text into commands (lists of words), expanding variables.
/// Only what the docs need: no globbing, no command substitution; the part
/// of a pipeline after `|` is ignored (it only reshapes curl's output).
pub fn commands(text: &str, vars: &HashMap<String, String>) -> Result<Vec<Vec<String>>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut skipping_pipe = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if skipping_pipe && c != '\n' {
            i += 1;
            continue;
        }
        match c {
            '\\' if chars.get(i + 1) == Some(&'\n') => i += 2,
            '\\' => {
                let next = chars.get(i + 1).ok_or("a trailing backslash")?;
                word.push(*next);
                in_word = true;
                i += 2;
            }
            '\'' => {
                let end = find(&chars, i + 1, '\'').ok_or("an unclosed single quote")?;
                word.extend(&chars[i + 1..end]);
                in_word = true;
                i = end + 1;
            }
            '"' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("an unclosed double quote".into()),
                        Some('"') => break,
                        Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            word.push(chars[i + 1]);
                            i += 2;
                        }
                        Some('$') => i = expand(&chars, i, vars, &mut word)?,
                        Some(other) => {
                            word.push(*other);
                            i += 1;
                        }
                    }
                }
                in_word = true;
                i += 1;
            }
            '$' => {
                i = expand(&chars, i, vars, &mut word)?;
                in_word = true;
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '|' if !in_word => skipping_pipe = true,
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                if c == '\n' {
                    skipping_pipe = false;
                    if !words.is_empty() {
                        commands.push(std::mem::take(&mut words));
                    }
                }
                i += 1;
            }
            ';' | '&' | '`' | '(' | ')' | '<' | '>' => {
                return Err(format!("uses `{c}`, which this reader does not handle"))
            }
            _ => {
                word.push(c);
                in_word = true;
                i += 1;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if !words.is_empty() {
        commands.push(words);
    }
    Ok(commands)
}

fn find(chars: &[char], from: usize, wanted: char) -> Option<usize> {
    (from..chars.len()).find(|&j| chars[j] == wanted)
}

/// Expands `$NAME` or `${NAME}` at `chars[at]`; returns the index after it.
fn expand(
    chars: &[char],
    at: usize,
    vars: &HashMap<String, String>,
    out: &mut String,
) -> Result<usize, String> {
    let braced = chars.get(at + 1) == Some(&'{');
    let start = at + 1 + usize::from(braced);
    let mut end = start;
    while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
        end += 1;
    }
    let name: String = chars[start..end].iter().collect();
    if name.is_empty() {
        return Err("a `$` without a variable name".into());
    }
    if braced {
        if chars.get(end) != Some(&'}') {
            return Err(format!("an unclosed ${{{name}"));
        }
        end += 1;
    }
    let value = vars
        .get(&name)
        .ok_or_else(|| format!("uses ${name}, which the test does not provide"))?;
    out.push_str(value);
    Ok(end)
}

/// Options curl takes without a value, as the docs use them.
const FLAGS: &[&str] = &[
    "--silent",
    "--show-error",
    "--include",
    "--no-buffer",
    "--fail",
    "--insecure",
    "--verbose",
];
const SHORT_FLAGS: &str = "sSiNfkv";
/// Options whose value does not change the request.
const IGNORED_WITH_VALUE: &[&str] = &["-o", "--output", "-D", "--dump-header", "-w", "--write-out"];

pub fn parse_curl(words: &[String]) -> Result<CurlRequest, String> {
    let mut method: Option<String> = None;
    let mut url: Option<String> = None;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut data: Vec<String> = Vec::new();
    let mut it = words.iter().skip(1);
    while let Some(word) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} without a value"))
        };
        match word.as_str() {
            "-X" | "--request" => method = Some(value(word)?),
            "-H" | "--header" => {
                let raw = value(word)?;
                let (name, v) = raw
                    .split_once(':')
                    .ok_or_else(|| format!("header {raw:?} has no colon"))?;
                headers.push((name.trim().to_string(), v.trim().to_string()));
            }
            "-d" | "--data" | "--data-raw" | "--data-binary" => {
                let v = value(word)?;
                if v.starts_with('@') && word != "--data-raw" {
                    return Err("reads the body from a file, which the test cannot".into());
                }
                data.push(v);
            }
            w if IGNORED_WITH_VALUE.contains(&w) => {
                value(w)?;
            }
            w if FLAGS.contains(&w) => {}
            w if w.starts_with('-')
                && !w.starts_with("--")
                && w.len() > 1
                && w[1..].chars().all(|c| SHORT_FLAGS.contains(c)) => {}
            w if w.starts_with('-') => return Err(format!("unknown curl option {w}")),
            w => {
                if url.replace(w.to_string()).is_some() {
                    return Err("more than one URL".into());
                }
            }
        }
    }
    let url = url.ok_or("no URL")?;
    let path = ["http://127.0.0.1:3456", "http://localhost:3456"]
        .iter()
        .find_map(|base| url.strip_prefix(base))
        .ok_or_else(|| format!("URL {url} is not the local server on port 3456"))?;
    let path = if path.is_empty() { "/" } else { path }.to_string();
    let body = (!data.is_empty()).then(|| data.join("&"));
    // curl labels -d data as a form unless told otherwise.
    if body.is_some()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    let method = method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.into());
    Ok(CurlRequest {
        method,
        path,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> HashMap<String, String> {
        [("KEY", "sk-1"), ("SID", "abc")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn quotes_continuations_and_variables_read_like_a_shell() {
        let text = "# a comment\nSID=placeholder   # shown to the reader\ncurl -sN http://localhost:3456/v1/chat/completions \\\n  -H \"Authorization: Bearer $KEY\" \\\n  -H 'X-Claude-Session-ID: ${SID}' \\\n  -d '{\"a\": \"it\\x27s\",\n  \"b\": 1}' | jq .";
        let rq = request_of(text, &vars()).unwrap();
        assert_eq!(rq.method, "POST");
        assert_eq!(rq.path, "/v1/chat/completions");
        assert_eq!(
            rq.headers,
            [
                ("Authorization".to_string(), "Bearer sk-1".to_string()),
                ("X-Claude-Session-ID".into(), "${SID}".into()),
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into()
                ),
            ]
        );
        assert_eq!(
            rq.body.as_deref(),
            Some("{\"a\": \"it\\x27s\",\n  \"b\": 1}")
        );
    }

    #[test]
    fn what_the_reader_cannot_honour_is_an_error() {
        let v = vars();
        for bad in [
            "curl -s http://example.com/health",
            "curl --compressed http://127.0.0.1:3456/health",
            "curl -s http://127.0.0.1:3456/health -H \"X: $MISSING\"",
            "curl http://127.0.0.1:3456/a\ncurl http://127.0.0.1:3456/b",
            "OTHER=1\ncurl http://127.0.0.1:3456/health",
            "wget http://127.0.0.1:3456/health",
            "curl -d @body.json http://127.0.0.1:3456/x",
            "curl 'http://127.0.0.1:3456/x",
        ] {
            assert!(request_of(bad, &v).is_err(), "{bad}");
        }
        let get = request_of("curl -si http://127.0.0.1:3456", &v).unwrap();
        assert_eq!((get.method.as_str(), get.path.as_str()), ("GET", "/"));
        assert_eq!(get.body, None);
    }
}
