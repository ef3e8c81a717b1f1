-- Platform superadmins: set only by `strongroom admin create-superadmin`, never through the API.
ALTER TABLE users ADD COLUMN superadmin BIGINT NOT NULL DEFAULT 0;
