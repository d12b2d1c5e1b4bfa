// A real Unleash server for opsbot's flag tests and local trials, run by scripts/unleash-server.sh.
// It creates its own PostgreSQL database when missing, listens on loopback only, and uses the
// authentication type "none" (every admin call is allowed): never expose it beyond this machine.
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { start } from 'unleash-server';

const env = process.env;
const db = {
    host: env.UNLEASH_DB_HOST || '127.0.0.1',
    port: Number(env.UNLEASH_DB_PORT || 5432),
    user: env.UNLEASH_DB_USER || 'postgres',
    password: env.UNLEASH_DB_PASSWORD || '',
    database: env.UNLEASH_DB_NAME || 'unleash_test',
    ssl: false,
};

async function ensureDatabase() {
    const admin = new pg.Client({ ...db, database: env.UNLEASH_DB_ADMIN_DB || 'postgres' });
    await admin.connect();
    try {
        const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.database]);
        if (found.rowCount === 0) {
            // Identifiers cannot be parameters; the name comes from our own environment and is quoted.
            await admin.query(`CREATE DATABASE "${db.database.replaceAll('"', '""')}"`);
        }
    } finally {
        await admin.end();
    }
}

if (env.UNLEASH_PID_FILE) {
    // The script stops the server by this pid (a wrapper like setsid may have forked).
    writeFileSync(env.UNLEASH_PID_FILE, String(process.pid));
}
await ensureDatabase();
await start({
    db,
    server: { host: '127.0.0.1', port: Number(env.UNLEASH_PORT || 4242) },
    authentication: { type: 'none' },
    logLevel: env.UNLEASH_LOG_LEVEL || 'warn',
});
