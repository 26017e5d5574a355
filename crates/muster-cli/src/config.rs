//! The configuration file of `muster serve` (`--config FILE`, `MUSTER_CONFIG`).
//!
//! A flat TOML table whose keys are the long names of `serve`'s flags
//! (`listen = "0.0.0.0:8443"`, `tls-cert = "/etc/muster/cert.pem"`). The file
//! does not get a parser of its own: its values become the defaults of the
//! `serve` arguments, so clap validates them with the same value parsers as
//! the flags and precedence is flags over environment over file over
//! built-in defaults by construction. Unknown keys are refused with a
//! "did you mean"; nothing in the file is silently dropped.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command, CommandFactory, FromArgMatches, Subcommand};

use crate::serve::ServeArgs;
use crate::{say, Cli};

/// `muster config`.
#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate a configuration file and print the effective settings of
    /// `muster serve` with it and the current environment, with where each
    /// comes from (secrets masked). Exits non-zero on any problem.
    #[command(after_help = "Example:\n  muster config check /etc/muster/muster.toml")]
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

/// Runs `muster config`.
pub(crate) async fn config(command: ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Check { file } => {
            let (matches, settings) = effective_settings(Cli::command(), &file)?;
            let args = ServeArgs::from_arg_matches(&matches)
                .map_err(|error| anyhow!("{}", error.render().to_string().trim()))?;
            crate::serve::check(&args).await?;
            say(settings)?;
            eprintln!("{}: valid", file.display());
        }
    }
    Ok(())
}

/// `serve` arguments that are not settings of the server, so no key of the
/// file: the file itself, and the tenant (every tenant is served).
const NOT_KEYS: [&str; 2] = ["config", "tenant"];

/// The keys whose values may carry credentials (a password in a database
/// URL, a user and password in a collector's URL): masked when printed.
const URL_KEYS: [&str; 3] = ["database", "public-url", "otlp-endpoint"];

/// The arguments of `serve` a file may set: every one with a long flag
/// except [`NOT_KEYS`] and clap's own (`--help`).
fn keys(serve: &Command) -> impl Iterator<Item = (&str, &Arg)> {
    serve.get_arguments().filter_map(|arg| {
        let key = arg.get_long()?;
        let settable = !NOT_KEYS.contains(&key) && arg.get_id().as_str() != "help";
        settable.then_some((key, arg))
    })
}

/// `command` (the whole CLI) with the values of the configuration file at
/// `path` as the defaults of its `serve` subcommand. Every key is checked:
/// an unknown one, a value of the wrong type or one the flag would refuse
/// fails with the file, the key and what was expected.
pub(crate) fn with_file_defaults(command: Command, path: &Path) -> Result<Command> {
    let table = read_table(path)?;
    apply_table(command, path, &table)
}

/// The configuration file at `path` as a TOML table.
fn read_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    toml::from_str(&text).map_err(|error| anyhow!("{}: not valid TOML: {error}", path.display()))
}

/// [`with_file_defaults`] with the file already read.
fn apply_table(command: Command, path: &Path, table: &toml::Table) -> Result<Command> {
    let serve = command
        .find_subcommand("serve")
        .ok_or_else(|| anyhow!("this build has no serve command"))?;
    let mut defaults: Vec<(String, String)> = Vec::new();
    for (key, value) in table {
        let (_, arg) = keys(serve)
            .find(|(known, _)| known == key)
            .ok_or_else(|| anyhow!("{}: {}", path.display(), unknown_key(serve, key)))?;
        let text = match value {
            toml::Value::String(text) => text.clone(),
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            other => bail!(
                "{}: '{key}' must be a string, a whole number or true/false, not {}",
                path.display(),
                other.type_str()
            ),
        };
        // The value goes through the flag's own parser: the argument alone,
        // without its environment variable, with the value as its default.
        Command::new("muster")
            .no_binary_name(true)
            .arg(arg.clone().env(None).default_value(text.clone()))
            .try_get_matches_from(Vec::<String>::new())
            .map_err(|error| {
                anyhow!(
                    "{}: '{key}' = {value}: {}",
                    path.display(),
                    invalid_value(arg, &error)
                )
            })?;
        defaults.push((arg.get_id().as_str().to_owned(), text));
    }
    Ok(command.mut_subcommand("serve", |mut serve| {
        for (id, value) in defaults {
            serve = serve.mut_arg(id, |arg| arg.default_value(value));
        }
        serve
    }))
}

/// Why a value was refused, without clap's usage lines: the parser's own
/// words, else the values the argument takes.
fn invalid_value(arg: &Arg, error: &clap::Error) -> String {
    if let Some(cause) = std::error::Error::source(error) {
        return cause.to_string();
    }
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .map(|value| value.get_name().to_owned())
        .collect();
    if possible.is_empty() {
        "not a valid value".to_owned()
    } else {
        format!("expected one of {}", possible.join(", "))
    }
}

/// "unknown key 'lisen' (did you mean 'listen'?)", with the closest key
/// when one is close enough (`data_dir` finds `data-dir`).
fn unknown_key(serve: &Command, key: &str) -> String {
    let wanted = key.to_ascii_lowercase().replace('_', "-");
    let best = keys(serve)
        .map(|(known, _)| {
            (
                known,
                strsim::normalized_damerau_levenshtein(&wanted, known),
            )
        })
        .filter(|(_, score)| *score >= 0.6)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    match best {
        Some((known, _)) => format!("unknown key '{key}' (did you mean '{known}'?)"),
        None => format!(
            "unknown key '{key}'; the keys are the long names of `muster serve`'s flags: {}",
            keys(serve)
                .map(|(known, _)| known)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The effective settings of `serve` with the file at `path`, one
/// `key = value  # source` line each, as TOML (the output is itself a valid
/// configuration file). Credentials in URLs are masked.
pub(crate) fn effective_settings(command: Command, path: &Path) -> Result<(ArgMatches, String)> {
    let table = read_table(path)?;
    // The order of `serve --help` (a changed default moves an argument last).
    let order: Vec<String> = command
        .find_subcommand("serve")
        .map(|serve| keys(serve).map(|(key, _)| key.to_owned()).collect())
        .unwrap_or_default();
    let command = apply_table(command, path, &table)?;
    let serve = command
        .find_subcommand("serve")
        .ok_or_else(|| anyhow!("this build has no serve command"))?
        .clone()
        .no_binary_name(true);
    let matches = serve
        .clone()
        .try_get_matches_from(Vec::<String>::new())
        .map_err(|error| anyhow!("{}", error.render().to_string().trim()))?;
    let mut lines = Vec::new();
    for key in &order {
        let Some((key, arg)) = keys(&serve).find(|(known, _)| known == key) else {
            continue;
        };
        let id = arg.get_id().as_str();
        let value = matches
            .get_raw(id)
            .map(|values| {
                values
                    .map(|value| value.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .map(|value| {
                if URL_KEYS.contains(&key) {
                    mask_credentials(&value)
                } else {
                    value
                }
            });
        let source = match matches.value_source(id) {
            Some(ValueSource::EnvVariable) => format!(
                "from {}",
                arg.get_env()
                    .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
            ),
            Some(ValueSource::DefaultValue) if table.contains_key(key) => {
                "from the file".to_owned()
            }
            Some(ValueSource::DefaultValue) => "default".to_owned(),
            Some(ValueSource::CommandLine) => "from the command line".to_owned(),
            Some(_) | None => "not set".to_owned(),
        };
        let line = match value {
            Some(value) => format!("{key} = {}", toml_literal(&value)),
            None => format!("# {key} ="),
        };
        lines.push(format!("{line:<48} # {source}"));
    }
    Ok((matches, lines.join("\n")))
}

/// A value as TOML: numbers and booleans bare, everything else a string.
fn toml_literal(value: &str) -> String {
    let bare = value == "true"
        || value == "false"
        || (!value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()));
    if bare {
        value.to_owned()
    } else {
        toml::Value::String(value.to_owned()).to_string()
    }
}

/// `scheme://user:****@host/...` for a URL holding a password (and
/// `****` for the value of every query parameter naming a password, such
/// as `?password=` or `?sslpassword=`), and `password=****` in a
/// `key=value` PostgreSQL connection string (quoted or not, spaces around
/// `=` or not); other text unchanged.
pub(crate) fn mask_credentials(text: &str) -> String {
    if let Ok(mut url) = url::Url::parse(text) {
        let in_query = url.query_pairs().any(|(name, _)| names_a_password(&name));
        let in_userinfo = url.password().is_some() && url.set_password(Some("****")).is_ok();
        if !in_query && !in_userinfo {
            return text.to_owned();
        }
        if in_query {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(name, value)| {
                    let value = if names_a_password(&name) {
                        "****".to_owned()
                    } else {
                        value.into_owned()
                    };
                    (name.into_owned(), value)
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        return url.to_string();
    }
    mask_key_values(text)
}

/// Whether a connection parameter holds a password (`password`,
/// `sslpassword`, any case).
fn names_a_password(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with("password")
}

/// A libpq `key=value` connection string with the value of every password
/// key replaced by `****`; past anything it cannot read, the rest is
/// masked whole when it mentions a password.
fn mask_key_values(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        masked.push_str(rest.get(..rest.len() - trimmed.len()).unwrap_or_default());
        rest = trimmed;
        if rest.is_empty() {
            return masked;
        }
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let (key, after_key) = rest.split_at(key_end);
        let Some(after_equals) = after_key.trim_start().strip_prefix('=') else {
            if names_a_password(rest) || rest.to_ascii_lowercase().contains("password") {
                masked.push_str("****");
            } else {
                masked.push_str(rest);
            }
            return masked;
        };
        let value = after_equals.trim_start();
        let value_end = if value.starts_with('\'') {
            // A quoted value ends at the first quote not escaped by `\`.
            let mut escaped = false;
            value
                .char_indices()
                .skip(1)
                .find(|(_, c)| {
                    let closes = *c == '\'' && !escaped;
                    escaped = *c == '\\' && !escaped;
                    closes
                })
                .map_or(value.len(), |(at, _)| at + 1)
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        let (value_text, after_value) = value.split_at(value_end);
        masked.push_str(key);
        masked.push_str(
            after_key
                .get(..after_key.len() - value.len())
                .unwrap_or_default(),
        );
        masked.push_str(if names_a_password(key) {
            "****"
        } else {
            value_text
        });
        rest = after_value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's "Configuration" is the one place the settings are
    /// documented: it must name every key with its flag and variable.
    #[test]
    fn the_readme_lists_every_key_with_its_flag_and_variable() {
        let readme = include_str!("../../../README.md");
        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").expect("a serve command");
        for (key, arg) in keys(serve) {
            let variable = arg
                .get_env()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let row = format!("| `{key}` | `--{key}` | `{variable}` |");
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
    }

    fn check_mask(input: &str, expected: &str) {
        assert_eq!(mask_credentials(input), expected, "{input}");
    }

    #[test]
    fn credentials_are_masked() {
        check_mask(
            "postgres://muster:s3cret@db.example.com/muster",
            "postgres://muster:****@db.example.com/muster",
        );
        check_mask(
            "postgres://muster@db.example.com/muster",
            "postgres://muster@db.example.com/muster",
        );
        check_mask(
            "host=db user=muster password=s3cret dbname=muster",
            "host=db user=muster password=**** dbname=muster",
        );
        check_mask("https://muster.example.com", "https://muster.example.com");
    }

    #[test]
    fn passwords_are_masked_in_every_spelling() {
        for (input, expected) in [
            (
                "postgres://db.example.com/muster?password=s3cret&sslmode=require",
                "postgres://db.example.com/muster?password=****&sslmode=require",
            ),
            (
                "postgres://db/m?user=x&Password=s3cret",
                "postgres://db/m?user=x&Password=****",
            ),
            (
                "postgres://db/m?sslpassword=s3cret",
                "postgres://db/m?sslpassword=****",
            ),
            (
                "postgres://muster:s3%40cret@db/m?password=s3cret",
                "postgres://muster:****@db/m?password=****",
            ),
            (
                "host=db password='s3 cret' dbname=m",
                "host=db password=**** dbname=m",
            ),
            (
                "host=db password = s3cret dbname=m",
                "host=db password = **** dbname=m",
            ),
            (
                r"host=db password='it\'s s3cret' dbname=m",
                "host=db password=**** dbname=m",
            ),
            ("host=db sslpassword=s3cret", "host=db sslpassword=****"),
            ("host=db password", "host=db ****"),
        ] {
            check_mask(input, expected);
            assert!(!mask_credentials(input).contains("s3"), "{input}");
        }
    }

    #[test]
    fn literals_round_trip_as_toml() {
        for (value, expected) in [
            ("8", "8"),
            ("true", "true"),
            ("127.0.0.1:8080", "\"127.0.0.1:8080\""),
            ("60s", "\"60s\""),
        ] {
            assert_eq!(toml_literal(value), expected, "{value}");
        }
    }
}
