//! The words `muster --help` opens with, and the test that every command's
//! help says what it does and shows an example.

/// `muster --version`: the version and the commit it was built from
/// (`build.rs`).
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MUSTER_COMMIT"),
    ")"
);

/// The first line of `muster --help`.
pub(crate) const ABOUT: &str =
    "Muster: provisions your contact center's users from your identity provider";

/// What Muster is, for the admin who runs it.
pub(crate) const LONG_ABOUT: &str = "\
Muster: provisions your contact center's users from your identity provider.

Microsoft Entra ID, Okta or Ping push users and groups to Muster over SCIM 2.0.
Muster keeps every attribute they send, works out each agent's contact-center
entitlements (roles, skills, languages, management unit, licenses) from rules you
write, and delivers every change within a second to Genesys Cloud, NICE CXone,
Five9, any SCIM 2.0 service or CSV files.

`muster serve` runs the server; every other command works on its data directly
(SQLite in --data-dir, or PostgreSQL with --database), with or without a server
running.";

/// The steps from nothing to a test connection, after the command list.
pub(crate) const GETTING_STARTED: &str = "\
Getting started:
  muster token create --name entra        # the Secret Token for Entra ID (printed once)
  muster serve --listen 0.0.0.0:443 --tls-cert cert.pem --tls-key key.pem \\
    --public-url https://muster.example.com
  # Entra ID > Provisioning: Tenant URL https://muster.example.com/scim/v2,
  # Secret Token as printed, then Test Connection.

Data lives in ./muster-data (--data-dir, MUSTER_DATA_DIR) or in PostgreSQL
(--database, MUSTER_DATABASE_URL). `muster help COMMAND` explains each command.";

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use crate::Cli;

    /// Calls `visit` with every command from `command` down (the generated
    /// `help` commands left out), each with its path from `muster`.
    fn each_command(
        command: &clap::Command,
        path: &str,
        visit: &mut impl FnMut(&str, &clap::Command),
    ) {
        visit(path, command);
        for sub in command.get_subcommands() {
            if sub.get_name() != "help" {
                each_command(sub, &format!("{path} {}", sub.get_name()), visit);
            }
        }
    }

    #[test]
    fn every_command_says_what_it_does_and_shows_an_example() {
        let mut root = Cli::command();
        root.build();
        let mut faults = Vec::new();
        let mut commands = 0;
        each_command(&root, "muster", &mut |path, command| {
            commands += 1;
            let help = command.clone().render_long_help().to_string();
            let about = command.get_about().map(ToString::to_string);
            if about.is_none_or(|about| about.trim().len() < 10) {
                faults.push(format!("{path}: no description"));
            }
            let words: Vec<String> = path.split(' ').map(str::to_owned).collect();
            let example = examples(&help)
                .iter()
                .any(|example| example.starts_with(&words));
            if !example {
                faults.push(format!("{path}: no example starting with '{path}'"));
            }
        });
        assert!(commands > 40, "only {commands} commands were walked");
        assert!(faults.is_empty(), "{}", faults.join("\n"));
    }

    /// The example command lines of a help text, after its first
    /// `Example` or `Getting started`: lines starting with `muster ` (or
    /// `Example: muster `), joined across `\` continuations, cut at a pipe
    /// or a redirection.
    fn examples(help: &str) -> Vec<Vec<String>> {
        let start = ["Example", "Getting started"]
            .iter()
            .filter_map(|marker| help.find(marker))
            .min()
            .unwrap_or(help.len());
        let mut lines = Vec::new();
        let mut pending: Option<String> = None;
        for line in help[start..].lines() {
            let line = line.trim();
            let line = ["Example: ", "Examples: "]
                .iter()
                .find_map(|prefix| line.strip_prefix(prefix))
                .unwrap_or(line);
            let text = match pending.take() {
                Some(start) => format!("{start} {line}"),
                None if line.starts_with("muster ") => line.to_owned(),
                None => continue,
            };
            match text.strip_suffix('\\') {
                Some(start) => pending = Some(start.trim_end().to_owned()),
                None => lines.push(text),
            }
        }
        lines
            .iter()
            .map(|line| {
                let words =
                    shlex::split(line).unwrap_or_else(|| panic!("unbalanced quotes: {line}"));
                words
                    .into_iter()
                    .take_while(|word| !["|", ">", ">>"].contains(&word.as_str()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_example_parses() {
        let mut root = Cli::command();
        root.build();
        let mut faults = Vec::new();
        let mut parsed = 0;
        each_command(&root, "muster", &mut |path, command| {
            let help = command.clone().render_long_help().to_string();
            for words in examples(&help) {
                parsed += 1;
                if let Err(error) = Cli::command().try_get_matches_from(&words) {
                    faults.push(format!("{path}: {}\n{}", words.join(" "), error.render()));
                }
            }
        });
        assert!(parsed > 60, "only {parsed} examples were found");
        assert!(faults.is_empty(), "{}", faults.join("\n"));
    }

    #[test]
    fn the_version_names_the_commit() {
        let version = Cli::command().render_version();
        assert!(
            version.starts_with(&format!("muster {} (commit ", env!("CARGO_PKG_VERSION"))),
            "{version}"
        );
        let commit = version
            .trim_end()
            .rsplit(' ')
            .next()
            .and_then(|last| last.strip_suffix(')'))
            .unwrap_or_default();
        assert!(
            commit == "unknown"
                || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{version}"
        );
    }
}
