// An OrgScope (membership, role, key) cannot be made outside tenancy.
use strongroom::tenancy::OrgScope;

fn forge(tx: strongroom::store::tenant::TenantTx) -> OrgScope {
    OrgScope { tx }
}

fn main() {
    let _ = forge;
}
