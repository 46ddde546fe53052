//! Log output: one JSON object per line (`LOG_FORMAT=json`) or a readable
//! line (`pretty`), on stderr. A message that is itself a JSON object (the
//! access line, audit events) is merged into the line's object so its
//! fields stay queryable.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Config, LogFormat};

pub fn init(config: &Config) {
    let format = config.log_format;
    let mut builder = env_logger::Builder::new();
    builder.filter_level(config.log_level);
    // Dependencies log at debug with details we do not want (URLs, headers).
    for noisy in ["ureq", "ureq_proto", "rustls", "tiny_http"] {
        builder.filter_module(noisy, log::LevelFilter::Warn);
    }
    builder.format(move |buf, record| {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let msg = record.args().to_string();
        match format {
            LogFormat::Json => {
                let head = format!(
                    "{{\"time\":{ts},\"level\":\"{}\",\"target\":{}",
                    record.level().as_str().to_ascii_lowercase(),
                    serde_json::Value::from(record.target())
                );
                if msg.starts_with('{') && msg.ends_with('}') && msg.len() > 2 {
                    writeln!(buf, "{head},{}", &msg[1..])
                } else {
                    writeln!(buf, "{head},\"msg\":{}}}", serde_json::Value::from(msg))
                }
            }
            LogFormat::Pretty => writeln!(
                buf,
                "{ts} {:5} {}: {}",
                record.level(),
                record.target(),
                msg
            ),
        }
    });
    // A second init (tests start several servers) keeps the first logger.
    let _ = builder.try_init();
}
