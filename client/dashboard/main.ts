/// <reference lib="dom" />
/**
 * Entry of the dashboard copy the local stack serves at `/dashboard/` (devstack/dashboard.ts): the API is the
 * origin that served the page. A static deployment bundles its own entry with a fixed origin instead
 * (devstack/dashboard_build.ts).
 */
import { mountDashboard } from "./app.ts";

mountDashboard(location.origin);
