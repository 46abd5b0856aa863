// graphql-codegen's client preset over the checked-in schema and the proofs' documents.
// `strictScalars` makes codegen stop on a scalar without a mapping; inkgraph's one custom
// scalar, DateTime, is an ISO 8601 string with an explicit offset on the wire (docs/API.md).
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../../schema.graphql",
  documents: ["../documents/*.graphql"],
  ignoreNoDocuments: false,
  generates: {
    "./src/gql/": {
      preset: "client",
      config: {
        strictScalars: true,
        scalars: { DateTime: { input: "string", output: "string" } },
        useTypeImports: true,
        // ES module output that node runs as is: relative imports end in ".js".
        emitLegacyCommonJSImports: false,
      },
      presetConfig: { fragmentMasking: { unmaskFunctionName: "getFragmentData" } },
    },
  },
};

export default config;
