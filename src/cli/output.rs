//! What commands print: tables sized to their content, counted nouns, and
//! stdout that may close early (`tokens status | head`).

use std::io::Write;
use std::process::ExitCode;

/// Why output stopped.
pub enum Stopped {
    /// The reader went away (`| head`): nothing is wrong.
    Closed,
    /// Stdout failed otherwise (disk full...), already reported.
    Failed,
}

/// Writes a command's result to stdout. A reader that went away is not an
/// error: the rest has nobody to read it, so the command ends quietly with
/// its own result (no panic, no message). Any other failure is reported.
pub fn print(text: &str) -> Result<(), Stopped> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Stopped::Closed),
        Err(e) => {
            eprintln!("tokenkeeper: cannot write the output: {e}");
            Err(Stopped::Failed)
        }
    }
}

/// Prints `text` and ends with `code`, which a closed stdout does not change.
pub fn finish(text: &str, code: ExitCode) -> ExitCode {
    match print(text) {
        Ok(()) | Err(Stopped::Closed) => code,
        Err(Stopped::Failed) => ExitCode::FAILURE,
    }
}

/// "1 connection", "2 connections".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Left-aligned columns as wide as their widest cell (in characters, so a
/// Vietnamese label lines up), two spaces apart; the last column is not
/// padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i < last {
                let pad = widths[i] - width(cell) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_content() {
        let t = table(
            &["ID", "TEAM", "HEALTH"],
            &[
                vec!["a".into(), "agency-north".into(), "healthy".into()],
                vec!["bb".into(), "-".into(), "reauth_required".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        let col = |l: &str, word: &str| l.find(word).unwrap();
        assert_eq!(col(lines[0], "HEALTH"), col(lines[1], "healthy"));
        assert_eq!(col(lines[0], "HEALTH"), col(lines[2], "reauth_required"));
        assert_eq!(col(lines[0], "TEAM"), col(lines[1], "agency-north"));
    }

    #[test]
    fn one_is_singular() {
        assert_eq!(count(1, "connection"), "1 connection");
        assert_eq!(count(0, "connection"), "0 connections");
    }
}
