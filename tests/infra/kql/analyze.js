// Parses and analyzes KQL queries with Microsoft's Kusto language service (the same
// Kusto.Language the Azure portal's editors use), against Application Insights' `traces`
// table. Reads a JSON array of query texts on stdin; writes a JSON array holding, per
// query, its diagnostics: [{severity, code, message, start}].
//
// The `traces` columns are those of the classic Application Insights schema (Azure Monitor
// docs, "traces" table reference); only names and types matter to the analysis.
"use strict";
const path = require("path");
const fs = require("fs");
const base = path.join(__dirname, "node_modules", "@kusto", "language-service-next");
require(path.join(base, "bridge.js"));
require(path.join(base, "Kusto.Language.Bridge.js"));

const K = globalThis.Kusto.Language;
const S = K.Symbols;
const TRACES = [
  ["timestamp", "datetime"], ["message", "string"], ["severityLevel", "int"],
  ["itemType", "string"], ["customDimensions", "dynamic"], ["customMeasurements", "dynamic"],
  ["operation_Name", "string"], ["operation_Id", "string"], ["operation_ParentId", "string"],
  ["cloud_RoleName", "string"], ["cloud_RoleInstance", "string"], ["appName", "string"],
  ["appId", "string"], ["itemId", "string"], ["itemCount", "int"], ["sdkVersion", "string"],
];
// `requests` and `exceptions`, where the Functions host records each invocation and each
// unhandled exception (the alert on failed timer invocations reads them): classic schema too.
const REQUESTS = [
  ["timestamp", "datetime"], ["id", "string"], ["name", "string"], ["url", "string"],
  ["success", "bool"], ["resultCode", "string"], ["duration", "real"],
  ["operation_Name", "string"], ["operation_Id", "string"], ["cloud_RoleName", "string"],
  ["customDimensions", "dynamic"], ["itemCount", "int"],
];
const EXCEPTIONS = [
  ["timestamp", "datetime"], ["problemId", "string"], ["type", "string"], ["message", "string"],
  ["outerType", "string"], ["outerMessage", "string"], ["innermostMessage", "string"],
  ["severityLevel", "int"], ["operation_Name", "string"], ["operation_Id", "string"],
  ["cloud_RoleName", "string"], ["customDimensions", "dynamic"], ["itemCount", "int"],
];
const table = (name, spec) => new S.TableSymbol.$ctor4(
  name, spec.map(([column, type]) => new S.ColumnSymbol(column, S.ScalarTypes.GetSymbol(type))));
const tables = [table("traces", TRACES), table("requests", REQUESTS), table("exceptions", EXCEPTIONS)];
const globals = K.GlobalState.Default.WithDatabase(new S.DatabaseSymbol.ctor("appinsights", tables));

const queries = JSON.parse(fs.readFileSync(0, "utf8"));
const results = queries.map((text) => {
  const diagnostics = K.KustoCode.ParseAndAnalyze(text, globals).GetDiagnostics();
  const found = [];
  for (let i = 0; i < diagnostics.Count; i++) {
    const d = diagnostics.getItem(i);
    found.push({ severity: d.Severity, code: d.Code, message: d.Message, start: d.Start });
  }
  return found;
});
process.stdout.write(JSON.stringify(results));
