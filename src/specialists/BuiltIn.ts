/**
 * The built-in roles: one JSON file each in `catalog/`, imported rather than read from disk so that they
 * ship inside the library's dist and the CLI's bundle alike. `Specialists` decodes them like any user file;
 * a test checks that every file of the folder is listed here.
 */
import accountant from "./catalog/accountant.json" with { type: "json" }
import apiDesigner from "./catalog/api-designer.json" with { type: "json" }
import architect from "./catalog/architect.json" with { type: "json" }
import backendEngineer from "./catalog/backend-engineer.json" with { type: "json" }
import biAnalyst from "./catalog/bi-analyst.json" with { type: "json" }
import codeReviewer from "./catalog/code-reviewer.json" with { type: "json" }
import complianceAuditor from "./catalog/compliance-auditor.json" with { type: "json" }
import contentMarketer from "./catalog/content-marketer.json" with { type: "json" }
import contractReviewer from "./catalog/contract-reviewer.json" with { type: "json" }
import copyEditor from "./catalog/copy-editor.json" with { type: "json" }
import customerSuccessManager from "./catalog/customer-success-manager.json" with { type: "json" }
import customerSupportAgent from "./catalog/customer-support-agent.json" with { type: "json" }
import dataAnalyst from "./catalog/data-analyst.json" with { type: "json" }
import dataEngineer from "./catalog/data-engineer.json" with { type: "json" }
import databaseEngineer from "./catalog/database-engineer.json" with { type: "json" }
import debuggerRole from "./catalog/debugger.json" with { type: "json" }
import devopsEngineer from "./catalog/devops-engineer.json" with { type: "json" }
import factChecker from "./catalog/fact-checker.json" with { type: "json" }
import financialAnalyst from "./catalog/financial-analyst.json" with { type: "json" }
import finopsAnalyst from "./catalog/finops-analyst.json" with { type: "json" }
import frontendEngineer from "./catalog/frontend-engineer.json" with { type: "json" }
import incidentCommander from "./catalog/incident-commander.json" with { type: "json" }
import literatureReviewer from "./catalog/literature-reviewer.json" with { type: "json" }
import machineLearningEngineer from "./catalog/machine-learning-engineer.json" with { type: "json" }
import marketResearcher from "./catalog/market-researcher.json" with { type: "json" }
import migrationEngineer from "./catalog/migration-engineer.json" with { type: "json" }
import openSourceLicenseReviewer from "./catalog/open-source-license-reviewer.json" with { type: "json" }
import performanceEngineer from "./catalog/performance-engineer.json" with { type: "json" }
import pricingStrategist from "./catalog/pricing-strategist.json" with { type: "json" }
import privacyOfficer from "./catalog/privacy-officer.json" with { type: "json" }
import productDesigner from "./catalog/product-designer.json" with { type: "json" }
import productManager from "./catalog/product-manager.json" with { type: "json" }
import projectManager from "./catalog/project-manager.json" with { type: "json" }
import proposalWriter from "./catalog/proposal-writer.json" with { type: "json" }
import qaEngineer from "./catalog/qa-engineer.json" with { type: "json" }
import releaseManager from "./catalog/release-manager.json" with { type: "json" }
import releaseNotesWriter from "./catalog/release-notes-writer.json" with { type: "json" }
import requirementsAnalyst from "./catalog/requirements-analyst.json" with { type: "json" }
import researcher from "./catalog/researcher.json" with { type: "json" }
import securityAuditor from "./catalog/security-auditor.json" with { type: "json" }
import securityIncidentResponder from "./catalog/security-incident-responder.json" with { type: "json" }
import sre from "./catalog/sre.json" with { type: "json" }
import statistician from "./catalog/statistician.json" with { type: "json" }
import supplyChainAuditor from "./catalog/supply-chain-auditor.json" with { type: "json" }
import supportTriageLead from "./catalog/support-triage-lead.json" with { type: "json" }
import technicalWriter from "./catalog/technical-writer.json" with { type: "json" }
import threatModeler from "./catalog/threat-modeler.json" with { type: "json" }
import uxResearcher from "./catalog/ux-researcher.json" with { type: "json" }

export const files: ReadonlyArray<readonly [file: string, content: unknown]> = [
  ["accountant.json", accountant],
  ["api-designer.json", apiDesigner],
  ["architect.json", architect],
  ["backend-engineer.json", backendEngineer],
  ["bi-analyst.json", biAnalyst],
  ["code-reviewer.json", codeReviewer],
  ["compliance-auditor.json", complianceAuditor],
  ["content-marketer.json", contentMarketer],
  ["contract-reviewer.json", contractReviewer],
  ["copy-editor.json", copyEditor],
  ["customer-success-manager.json", customerSuccessManager],
  ["customer-support-agent.json", customerSupportAgent],
  ["data-analyst.json", dataAnalyst],
  ["data-engineer.json", dataEngineer],
  ["database-engineer.json", databaseEngineer],
  ["debugger.json", debuggerRole],
  ["devops-engineer.json", devopsEngineer],
  ["fact-checker.json", factChecker],
  ["financial-analyst.json", financialAnalyst],
  ["finops-analyst.json", finopsAnalyst],
  ["frontend-engineer.json", frontendEngineer],
  ["incident-commander.json", incidentCommander],
  ["literature-reviewer.json", literatureReviewer],
  ["machine-learning-engineer.json", machineLearningEngineer],
  ["market-researcher.json", marketResearcher],
  ["migration-engineer.json", migrationEngineer],
  ["open-source-license-reviewer.json", openSourceLicenseReviewer],
  ["performance-engineer.json", performanceEngineer],
  ["pricing-strategist.json", pricingStrategist],
  ["privacy-officer.json", privacyOfficer],
  ["product-designer.json", productDesigner],
  ["product-manager.json", productManager],
  ["project-manager.json", projectManager],
  ["proposal-writer.json", proposalWriter],
  ["qa-engineer.json", qaEngineer],
  ["release-manager.json", releaseManager],
  ["release-notes-writer.json", releaseNotesWriter],
  ["requirements-analyst.json", requirementsAnalyst],
  ["researcher.json", researcher],
  ["security-auditor.json", securityAuditor],
  ["security-incident-responder.json", securityIncidentResponder],
  ["sre.json", sre],
  ["statistician.json", statistician],
  ["supply-chain-auditor.json", supplyChainAuditor],
  ["support-triage-lead.json", supportTriageLead],
  ["technical-writer.json", technicalWriter],
  ["threat-modeler.json", threatModeler],
  ["ux-researcher.json", uxResearcher]
]
