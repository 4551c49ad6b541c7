/** Whether a missing prerequisite fails the run (CI) or skips its suite with a warning (a workstation). */
export const IN_CI = process.env.CI === 'true';

/**
 * A suite's prerequisite that the test command could not set up. Under CI that is a failure of the run; on a
 * workstation the suite skips, and a banner says so and what to do about it.
 */
export function prerequisiteMissing(suite: string, problem: string, remedy: string): void {
  const text = `${suite}: ${problem}. ${remedy}, then run npm test again.`;
  if (IN_CI) throw new Error(`test prerequisite missing under CI=true: ${text}`);
  const rule = '='.repeat(78);
  console.warn(`\n${rule}\n  SKIPPING ${text}\n${rule}\n`);
}
