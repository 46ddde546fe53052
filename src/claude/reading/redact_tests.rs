//! Redaction: each pattern, prose that must survive, and secrets cut
//! across stream pieces at every position.

use super::*;

const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq8\nx9Yz+/AB==\n-----END RSA PRIVATE KEY-----";

#[test]
fn each_pattern_is_redacted() {
    for (input, expected) in [
        (
            "key sk-ant-api03-abcDEF123_xyz-0123456789 ok",
            "key [REDACTED] ok",
        ),
        ("sk-proj-Ab12Cd34Ef56Gh78Ij90Kl", "[REDACTED]"),
        ("sk-abcdefghijklmnopqrstuvwxyz", "[REDACTED]"),
        (
            "OPENAI_API_KEY=sk-0123456789abcdefghijKLMN",
            "OPENAI_API_KEY=[REDACTED]",
        ),
        ("sk-cca-0123456789abcdef7f3a.", "[REDACTED]."),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig",
            "Authorization: [REDACTED]",
        ),
        ("bearer abcdefghij1", "[REDACTED]"),
        ("Bearer dGhpc2lzYXRva2VuZm9ybWU=", "[REDACTED]"),
        ("id AKIAIOSFODNN7EXAMPLE here", "id [REDACTED] here"),
        ("ASIAABCDEFGHIJKLMNOP", "[REDACTED]"),
        (PEM, "[REDACTED]"),
        (
            "a\n-----BEGIN PRIVATE KEY-----\r\nQUJD\r\n-----END PRIVATE KEY-----\nb",
            "a\n[REDACTED]\nb",
        ),
        (
            "Files start with `-----BEGIN OPENSSH PRIVATE KEY-----` and so on.",
            "Files start with `[REDACTED]` and so on.",
        ),
        (
            "-----BEGIN EC PRIVATE KEY-----\nQUJD\nThat was a key.",
            "[REDACTED]\nThat was a key.",
        ),
    ] {
        assert_eq!(redact(input), expected, "{input}");
    }
}

#[test]
fn prose_is_left_alone() {
    for text in [
        "Use Bearer authentication with a token.",
        "Set the Bearer token: Bearer <TOKEN>",
        "the task-management-system-for-teams-2024 repo",
        "sk-short",
        "risk-assessment-of-the-whole-project-plan",
        "AKIA is a prefix; AKIAshort",
        "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----",
        "Grüße 🚀 日本語\n\"quoted\"",
        "",
    ] {
        assert_eq!(redact(text), text);
    }
}

/// Every way of cutting the input into two pieces gives the same output
/// as redacting it whole.
fn assert_split_safe(text: &str) {
    let whole = redact(text);
    for cut in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
        let mut r = StreamRedactor::new();
        let mut out = r.push(&text[..cut]);
        out += &r.push(&text[cut..]);
        out += &r.flush();
        assert_eq!(out, whole, "cut at {cut} of {text:?}");
    }
    let mut r = StreamRedactor::new();
    let mut out = String::new();
    for ch in text.chars() {
        out += &r.push(ch.encode_utf8(&mut [0; 4]));
    }
    out += &r.flush();
    assert_eq!(out, whole, "one character at a time: {text:?}");
}

#[test]
fn a_secret_split_across_deltas_is_still_caught() {
    for text in [
        "my key is sk-ant-api03-abcDEF123_xyz-0123456789 and more",
        "header: Bearer eyJhbGciOiJIUzI1NiJ9.e30 then",
        "aws AKIAIOSFODNN7EXAMPLE!",
        "k=sk-0123456789abcdefghijKLMN",
        &format!("see:\n{PEM}\nend"),
        "Grüße 🚀 日本語 sk-0123456789abcdefghijKLMN 日本語",
        "plain words, nothing to hide.",
    ] {
        assert_split_safe(text);
    }
}

#[test]
fn a_key_fed_one_character_at_a_time_never_leaks() {
    let text = "x sk-ant-api03-abcDEF123_xyz-0123456789 y Bearer abcdefghij12345 z";
    let mut r = StreamRedactor::new();
    let mut out = String::new();
    for ch in text.chars() {
        out += &r.push(ch.encode_utf8(&mut [0; 4]));
    }
    out += &r.flush();
    assert_eq!(out, "x [REDACTED] y [REDACTED] z");
}

#[test]
fn text_streams_without_waiting_for_the_end() {
    let mut r = StreamRedactor::new();
    assert_eq!(r.push("Hello"), "");
    assert_eq!(r.push(" from"), "Hello ");
    assert_eq!(r.push(" 日本語"), "from 日本語");
    assert_eq!(r.push("\n\"q\""), "\n\"q\"");
    assert_eq!(r.push(" up."), " ");
    assert_eq!(r.flush(), "up.");
}

#[test]
fn a_huge_unbroken_run_is_released_and_a_huge_key_is_swallowed() {
    let mut r = StreamRedactor::new();
    let blob = "a".repeat(MAX_HOLD + 10);
    assert_eq!(r.push(&blob), blob);

    let mut r = StreamRedactor::new();
    let key = format!("sk-{}", "1".repeat(MAX_HOLD + 10));
    assert_eq!(r.push(&key), REDACTED);
    assert_eq!(r.push("111"), "");
    assert_eq!(r.push("1 after"), " ");
    assert_eq!(r.flush(), "after");
}
