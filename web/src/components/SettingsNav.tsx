import { TabNav } from './TabNav';

const TABS = [
  { to: '/settings', label: 'Account' },
  { to: '/settings/memory', label: 'Memory' },
];

/** The tabs of Settings. */
export function SettingsNav() {
  return <TabNav label="Settings" tabs={TABS} />;
}
