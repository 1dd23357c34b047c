-- Facts about the store itself, one value per name. `sealed_format` is the ciphertext format
-- every sealed value has been brought to (so the one-time re-seal runs once per store).
CREATE TABLE store_meta (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
