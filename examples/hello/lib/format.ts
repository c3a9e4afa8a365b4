export const shout = (text: string): string => `${text}!`;

import.meta.hot?.accept();
