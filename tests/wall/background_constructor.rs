// A background job's constructor (no membership check) is not for code outside the crate.
use strongroom::store::tenant::TenantTx;
use strongroom::store::Db;

async fn retention(db: &Db) {
    let _ = TenantTx::for_retention(db, "someone-elses-org").await;
}

fn main() {
    let _ = retention;
}
