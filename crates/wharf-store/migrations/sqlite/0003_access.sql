-- Identity and access: principal kinds (user, sp, admin_account, token), role
-- assignments, repository-token scope maps. Audit reuses the `audit` table of 0002.

-- Service principals log in with a generated client id (or their name); other kinds
-- leave it NULL. A disabled credential is a NULL password_hash (nobody can log in).
ALTER TABLE principals ADD COLUMN client_id TEXT;
CREATE UNIQUE INDEX principals_client_id ON principals(client_id) WHERE client_id IS NOT NULL;

-- A built-in role (names are data the server knows) granted on a scope:
-- `registry`, `repository:<name>` or `repository:<prefix>/*`.
CREATE TABLE role_assignments (
    principal_id INTEGER NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    scope        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (principal_id, role, scope)
);

-- A repository token's scope map: ACR scope-map actions per repository (or prefix/*).
CREATE TABLE token_scopes (
    principal_id INTEGER NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    repository   TEXT NOT NULL,
    action       TEXT NOT NULL,
    PRIMARY KEY (principal_id, repository, action)
);

-- The bootstrap owner of databases created before roles existed keeps owning.
INSERT INTO role_assignments (principal_id, role, scope, created_at)
    SELECT id, 'Owner', 'registry', created_at FROM principals WHERE name = 'admin' AND kind = 'user';
