//! The served OpenAPI document against its committed snapshot, so that any
//! change to the API's shape shows up in review as a diff of
//! `tests/snapshots/openapi.json`.

use std::path::Path;

use crate::helpers::TestApp;
use crate::openapi::spec;

const SNAPSHOT: &str = "tests/snapshots/openapi.json";
const UPDATE: &str = "UPDATE_SNAPSHOTS=1 cargo test --test it openapi_snapshot";

#[tokio::test]
async fn the_openapi_document_matches_its_committed_snapshot() {
    let app = TestApp::spawn().await;
    // Pretty-printed in the document's own key order (preserve_order).
    let served = serde_json::to_string_pretty(&spec(&app).await).unwrap() + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &served).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {SNAPSHOT} ({e}); create it with `{UPDATE}`"));
    if served != committed {
        panic!(
            "/openapi.json differs from {SNAPSHOT}:\n{}\n\
             If the change is intended, update the snapshot with `{UPDATE}` and commit it.",
            first_difference(&committed, &served)
        );
    }
}

/// The first line that differs, with two lines of context before it.
fn first_difference(committed: &str, served: &str) -> String {
    let (old, new): (Vec<_>, Vec<_>) = (committed.lines().collect(), served.lines().collect());
    let at = (0..old.len().max(new.len()))
        .find(|&i| old.get(i) != new.get(i))
        .unwrap_or(0);
    let context = old[at.saturating_sub(2)..at.min(old.len())].join("\n");
    format!(
        "at line {}:\n{context}\n- {}\n+ {}",
        at + 1,
        old.get(at).unwrap_or(&"<end of file>"),
        new.get(at).unwrap_or(&"<end of file>")
    )
}
