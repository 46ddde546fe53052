//! Which model names Claude Code mode accepts and what the CLI is told for
//! each. The answer is always one of a fixed set of static strings, so a
//! client's model text never reaches the CLI's argument vector.

use crate::error::ApiError;
use crate::request_json::shorten_to;

/// The Claude models this server lists (`GET /v1/models`); Claude Code
/// mode answers them, and a request naming one is Claude Code mode even
/// without the header. Each is an exact name below.
pub const LISTED: &[&str] = &["claude-opus-4-6", "claude-sonnet-4-6", "claude-haiku-4-5"];

/// Exact names a client may send, and the `--model` value each becomes.
/// The order is the order of the list shown in `model_not_found` errors.
const EXACT: &[(&str, &str)] = &[
    ("claude-opus-4-6", "claude-opus-4-6"),
    ("claude-sonnet-4-6", "claude-sonnet-4-6"),
    ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001"),
    ("opus", "opus"),
    ("sonnet", "sonnet"),
    ("haiku", "haiku"),
    ("gpt-4", "opus"),
    ("gpt-4-turbo", "sonnet"),
    ("gpt-4-turbo-preview", "sonnet"),
    ("gpt-4-0125-preview", "sonnet"),
    ("gpt-4-1106-preview", "sonnet"),
    ("gpt-4o", "sonnet"),
    ("gpt-4o-mini", "haiku"),
    ("gpt-3.5-turbo", "haiku"),
];

/// Families OpenAI publishes under dated names (`gpt-4o-2024-11-20`,
/// `gpt-3.5-turbo-0125`): anything after the prefix maps like the base.
const PREFIXES: &[(&str, &str)] = &[
    ("gpt-4o-2024-", "sonnet"),
    ("gpt-4-turbo-2024-", "sonnet"),
    ("gpt-3.5-turbo-", "haiku"),
];

/// The `--model` value for a requested name, or `model_not_found` listing
/// every name that would have worked.
pub fn resolve_model(requested: &str) -> Result<&'static str, ApiError> {
    if let Some((_, cli)) = EXACT.iter().find(|(name, _)| *name == requested) {
        return Ok(cli);
    }
    if let Some((_, cli)) = PREFIXES
        .iter()
        .find(|(prefix, _)| requested.len() > prefix.len() && requested.starts_with(prefix))
    {
        return Ok(cli);
    }
    // Other dated snapshots of a listed OpenAI model (`gpt-4o-mini-2024-07-18`,
    // `gpt-4-0613`) resolve like their base name.
    if let Some(base) = strip_date_suffix(requested) {
        if base.starts_with("gpt-") {
            if let Some((_, cli)) = EXACT.iter().find(|(name, _)| *name == base) {
                return Ok(cli);
            }
        }
    }
    if let Some(cli) = newer_family(requested).or_else(|| claude_family(requested)) {
        return Ok(cli);
    }
    Err(ApiError::ModelNotFound {
        // Echoed in the error: an absurd name is kept readable.
        model: shorten_to(requested, 64),
        valid: valid_model_names(),
    })
}

/// Every exact name `resolve_model` accepts (prefix families not spelled out).
pub fn valid_model_names() -> Vec<&'static str> {
    EXACT.iter().map(|(name, _)| *name).collect()
}

/// The newer OpenAI families, by tier: `gpt-4.1`, `gpt-5` (any point
/// release) and the `o` reasoning models. SDKs default to them (the Agents
/// SDK to a `gpt-5` variant), so a client that never names a model works.
/// `-nano` and `-mini` are the small tier, `-pro` the large one; a reasoning
/// model stands for the large tier and its `-mini` for the middle one.
fn newer_family(name: &str) -> Option<&'static str> {
    let tier = |rest: &str| {
        if rest.contains("-nano") || rest.contains("-mini") {
            "haiku"
        } else if rest.contains("-pro") {
            "opus"
        } else {
            "sonnet"
        }
    };
    let continues = |rest: &str, point: bool| {
        rest.is_empty() || rest.starts_with('-') || (point && rest.starts_with('.'))
    };
    // gpt-5 and every later generation (Codex 0.171's default is
    // gpt-6.2-sol), any point release.
    if let Some(after) = name.strip_prefix("gpt-") {
        let rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
        let generation: Option<u32> = after[..after.len() - rest.len()].parse().ok();
        if generation.is_some_and(|g| (5..=9).contains(&g)) {
            return continues(rest, true).then(|| tier(rest));
        }
    }
    if let Some(rest) = name.strip_prefix("gpt-4.1") {
        return continues(rest, false).then(|| tier(rest));
    }
    let rest = name.strip_prefix('o')?;
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    if rest.len() == name.len() - 1 || !continues(rest, false) {
        return None;
    }
    Some(if rest.contains("-mini") {
        "sonnet"
    } else {
        "opus"
    })
}

/// Other Claude model names (`claude-sonnet-4-5`, `claude-3-5-haiku-latest`,
/// dated or not), as Anthropic's SDKs and tools send them: the CLI's alias
/// of the same family, which is its newest model of that tier.
fn claude_family(name: &str) -> Option<&'static str> {
    let rest = name.strip_prefix("claude-")?;
    ["opus", "sonnet", "haiku"]
        .into_iter()
        .find(|tier| rest.split('-').any(|word| word == *tier))
}

/// `name-YYYY-MM-DD` or `name-MMDD` → `name`.
fn strip_date_suffix(name: &str) -> Option<&str> {
    let is_digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = name.rsplitn(4, '-').collect();
    if parts.len() == 4
        && is_digits(parts[0], 2)
        && is_digits(parts[1], 2)
        && is_digits(parts[2], 4)
    {
        return Some(parts[3]);
    }
    let (base, tail) = name.rsplit_once('-')?;
    is_digits(tail, 4).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_model_is_served_as_itself_or_its_snapshot() {
        for listed in LISTED {
            let cli = resolve_model(listed).expect("a listed model resolves");
            assert!(cli.starts_with(listed), "{listed} → {cli}");
        }
    }

    #[test]
    fn every_row_of_the_mapping_table() {
        for (requested, expected) in [
            ("claude-opus-4-6", "claude-opus-4-6"),
            ("claude-sonnet-4-6", "claude-sonnet-4-6"),
            ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),
            ("claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001"),
            ("opus", "opus"),
            ("sonnet", "sonnet"),
            ("haiku", "haiku"),
            ("gpt-4", "opus"),
            ("gpt-4-turbo", "sonnet"),
            ("gpt-4o", "sonnet"),
            ("gpt-4o-mini", "haiku"),
            ("gpt-3.5-turbo", "haiku"),
            ("gpt-4-turbo-preview", "sonnet"),
            ("gpt-4-0125-preview", "sonnet"),
            ("gpt-4-1106-preview", "sonnet"),
            ("gpt-4o-2024-11-20", "sonnet"),
            ("gpt-4o-2024-05-13", "sonnet"),
            ("gpt-4-turbo-2024-04-09", "sonnet"),
            ("gpt-3.5-turbo-0125", "haiku"),
            ("gpt-3.5-turbo-16k", "haiku"),
            ("gpt-4o-mini-2024-07-18", "haiku"),
            ("gpt-4-0613", "opus"),
            ("gpt-4.1", "sonnet"),
            ("gpt-4.1-mini", "haiku"),
            ("gpt-4.1-nano-2025-04-14", "haiku"),
            ("gpt-5", "sonnet"),
            ("gpt-5-mini", "haiku"),
            ("gpt-5-nano", "haiku"),
            ("gpt-5-pro", "opus"),
            ("gpt-5.1", "sonnet"),
            ("gpt-5.2-codex", "sonnet"),
            ("gpt-5.6-luna", "sonnet"),
            ("gpt-6.2-sol", "sonnet"),
            ("gpt-7-mini", "haiku"),
            ("gpt-5-chat-latest", "sonnet"),
            ("gpt-5-2025-08-07", "sonnet"),
            ("o1", "opus"),
            ("o1-2024-12-17", "opus"),
            ("o1-mini", "sonnet"),
            ("o3", "opus"),
            ("o3-mini", "sonnet"),
            ("o3-pro", "opus"),
            ("o4-mini", "sonnet"),
            ("claude-sonnet-4-5", "sonnet"),
            ("claude-sonnet-4-5-20250929", "sonnet"),
            ("claude-3-5-haiku-latest", "haiku"),
            ("claude-opus-4-1", "opus"),
            ("claude-3-opus-20240229", "opus"),
        ] {
            assert_eq!(resolve_model(requested), Ok(expected), "{requested}");
        }
    }

    #[test]
    fn unknown_names_list_every_valid_name() {
        for requested in [
            "o",
            "o1x",
            "ollama",
            "gpt-5x",
            "gpt-50",
            "gpt-4.10",
            "gpt-4.1.2",
            "gpt-4o-",
            "gtp-4o",
            "GPT-4O",
            "claude-3",
            "claude-sonnetx-4",
            "claude-",
            "xclaude-opus",
            "",
            "gpt-3.5-turbo-",
        ] {
            match resolve_model(requested) {
                Err(ApiError::ModelNotFound { model, valid }) => {
                    assert_eq!(model, requested);
                    assert_eq!(valid, valid_model_names());
                }
                other => panic!("{requested}: {other:?}"),
            }
        }
        let names = valid_model_names();
        for expected in ["claude-haiku-4-5", "sonnet", "gpt-4o", "gpt-3.5-turbo"] {
            assert!(names.contains(&expected), "{expected}");
        }
        assert!(names.iter().all(|n| !n.contains('*')));
    }

    #[test]
    fn a_huge_model_name_is_shortened_in_the_error() {
        let long = "x".repeat(300);
        let Err(ApiError::ModelNotFound { model, .. }) = resolve_model(&long) else {
            panic!("accepted");
        };
        assert!(model.len() < 80);
    }
}
