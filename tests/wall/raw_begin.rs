// The raw scoped begin (a transaction in any org's context) is private to the store.
use strongroom::store::tenant::Mode;
use strongroom::store::Db;

async fn open(db: &Db) {
    let _ = db.begin_scoped("someone-elses-org", "me", Mode::Read).await;
}

fn main() {
    let _ = open;
}
