// A TenantTx built by hand, skipping the membership check.
use strongroom::store::tenant::TenantTx;

fn main() {
    let _ = TenantTx {
        tx: None,
        org_id: String::from("someone-elses-org"),
        user_id: String::new(),
        read_only: false,
        writable: true,
    };
}
